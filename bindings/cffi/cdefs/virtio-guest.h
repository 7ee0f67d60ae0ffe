/* cdefs for aiolab/hw/virtio-guest.h: the driver's side of a split ring. */
typedef struct AiolabVring {
    GuestMemory *mem;
    unsigned int num;
    uint64_t desc, avail, used;
    uint8_t *desc_p, *avail_p, *used_p;
    bool event_idx;
    uint16_t avail_idx;
    uint16_t kicked_idx;
    uint16_t last_used_idx;
    uint16_t free_head;
    unsigned int num_free;
    uint16_t *next_free;
    uint16_t *chain_len;
} AiolabVring;
typedef struct AiolabVringBuf {
    uint64_t gpa;
    uint32_t len;
    bool write;
} AiolabVringBuf;
uint64_t aiolab_vring_layout(unsigned int num, uint64_t base, uint64_t *desc,
                             uint64_t *avail, uint64_t *used);
int aiolab_vring_init(AiolabVring *vr, GuestMemory *mem, unsigned int num,
                      uint64_t desc, uint64_t avail, uint64_t used,
                      bool event_idx);
void aiolab_vring_cleanup(AiolabVring *vr);
int aiolab_vring_add_chain(AiolabVring *vr, const AiolabVringBuf *bufs,
                           unsigned int n);
bool aiolab_vring_get_used(AiolabVring *vr, uint32_t *id, uint32_t *len);
bool aiolab_vring_kick_needed(AiolabVring *vr);
void aiolab_vring_set_desc(AiolabVring *vr, unsigned int i, uint64_t addr,
                           uint32_t len, uint16_t flags, uint16_t next);
void aiolab_vring_publish(AiolabVring *vr, uint16_t head);
void aiolab_vring_set_no_interrupt(AiolabVring *vr, bool on);
void aiolab_vring_set_used_event(AiolabVring *vr, uint16_t idx);
uint16_t aiolab_vring_used_idx(AiolabVring *vr);
uint16_t aiolab_vring_used_flags(AiolabVring *vr);
uint16_t aiolab_vring_avail_event(AiolabVring *vr);
