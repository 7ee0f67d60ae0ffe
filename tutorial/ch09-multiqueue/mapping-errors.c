/* cc -Ic/include tutorial/ch09-multiqueue/mapping-errors.c -o build/mapping-errors -Lbuild -laiolab -Wl,-rpath,$PWD/build */
/*
 * SPDX-License-Identifier: MIT
 *
 * ch09-multiqueue/mapping-errors.c - what iothread-vq-mapping refuses.
 *
 * QEMU validates a mapping when the device is realized, and refuses the
 * device, with one message per mistake.  We try each mistake on a disk
 * with 4 queues and check the message and that no device was created;
 * then a valid mapping.
 */
#include "../tutorial.h"
#include "../toy.h"

static const uint16_t v0[] = { 0 }, v01[] = { 0, 1 }, v12[] = { 1, 2 };
static const uint16_t v23[] = { 2, 3 }, v5[] = { 5 };

typedef struct Case {
    const char *json;           /* the "iothread-vq-mapping" value */
    IOThreadVirtQueueMapping map[2];
    size_t n;
    const char *iothread;       /* iothread= as well */
    bool ioeventfd;
    const char *error;          /* QEMU's message */
} Case;

/* [region: cases] */
static const Case cases[] = {
    { "[{\"iothread\": \"nope\"}]", { { .iothread = "nope" } }, 1,
      NULL, true, "IOThread \"nope\" object does not exist" },
    { "[{\"iothread\": \"io0\"}, {\"iothread\": \"io0\"}]",
      { { .iothread = "io0" }, { .iothread = "io0" } }, 2, NULL, true,
      "duplicate IOThread name \"io0\" in iothread-vq-mapping" },
    { "[{\"iothread\": \"io0\", \"vqs\": [0, 1]}, {\"iothread\": \"io1\"}]",
      { { "io0", v01, 2 }, { .iothread = "io1" } }, 2, NULL, true,
      "either all items in iothread-vq-mapping must have vqs or none of "
      "them must have it" },
    { "[{\"iothread\": \"io0\", \"vqs\": [5]}]", { { "io0", v5, 1 } }, 1,
      NULL, true, "vq index 5 for IOThread \"io0\" must be less than "
      "num_queues 4 in iothread-vq-mapping" },
    { "[{\"iothread\": \"io0\", \"vqs\": [0, 1]}, "
      "{\"iothread\": \"io1\", \"vqs\": [1, 2]}]",
      { { "io0", v01, 2 }, { "io1", v12, 2 } }, 2, NULL, true,
      "cannot assign vq 1 to IOThread \"io1\" because it is already "
      "assigned" },
    { "[{\"iothread\": \"io0\", \"vqs\": [0]}, "
      "{\"iothread\": \"io1\", \"vqs\": [2, 3]}]",
      { { "io0", v0, 1 }, { "io1", v23, 2 } }, 2, NULL, true,
      "missing vq 1 IOThread assignment in iothread-vq-mapping" },
    { "[{\"iothread\": \"io0\"}] and \"iothread\": \"io1\"",
      { { .iothread = "io0" } }, 1, "io1", true,
      "iothread and iothread-vq-mapping properties cannot be set at the "
      "same time" },
    { "[{\"iothread\": \"io0\"}] and \"ioeventfd\": false",
      { { .iothread = "io0" } }, 1, NULL, false,
      "ioeventfd is required for iothread" },
};
/* [endregion] */

/* Try to create the device; returns the error message, or NULL. */
static const char *try(AiolabMachine *m, const IOThreadVirtQueueMapping *map,
                       size_t n, const char *iothread, bool ioeventfd)
{
    static char msg[256];
    VirtIOBlkConf conf;
    Error *err = NULL;

    virtio_blk_conf_init(&conf);
    conf.num_queues = 4;
    conf.iothread_vq_mapping = map;
    conf.iothread_vq_mapping_len = n;
    conf.iothread = iothread;
    conf.ioeventfd = ioeventfd;
    if (aiolab_machine_add_virtio_blk(m, &conf, "disk0", &err)) {
        return NULL;
    }
    snprintf(msg, sizeof(msg), "%s", error_get_pretty(err));
    error_free(err);
    return msg;
}

int main(void)
{
    static const IOThreadVirtQueueMapping good[] = {
        { "io0", v01, 2 }, { "io1", v23, 2 },
    };
    size_t i, refused = 0;
    AiolabMachine *m;
    char claim[200];

    toy_init();
    iothread_create("io0", &error_abort);
    iothread_create("io1", &error_abort);
    toy_disk("disk0", 16);
    m = toy_machine(1);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const Case *c = &cases[i];
        const char *msg = try(m, c->map, c->n, c->iothread, c->ioeventfd);

        printf("%s\n  -> %s\n", c->json, msg ? msg : "(accepted!)");
        refused += msg && !strcmp(msg, c->error) &&
                   aiolab_machine_num_devices(m) == 0;
    }
    snprintf(claim, sizeof(claim), "each of the %zu mistakes is refused "
             "with QEMU's message, and no device is created",
             sizeof(cases) / sizeof(cases[0]));
    CHECK_EQ(claim, refused, sizeof(cases) / sizeof(cases[0]));

    CHECK("a valid explicit mapping is accepted: queues 0, 1 in io0 and "
          "2, 3 in io1", try(m, good, 2, NULL, true) == NULL &&
          aiolab_machine_num_devices(m) == 1);
    aiolab_machine_free(m);
    bql_unlock();
    return 0;
}
