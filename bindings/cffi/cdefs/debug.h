/* cdefs for aiolab/debug.h and aiolab/aiolab.h.  C-only:
 * aiolab_set_before_wait_hook (a test hook called inside aio_poll between
 * announcing a wait and sleeping, with no opaque: Python must not run
 * there). */
typedef struct _IO_FILE FILE;
void aiolab_dump_state(FILE *f);
void aiolab_dump_state_fd(int fd);
void aiolab_install_sigquit_handler(void);
bool aiolab_checks_enabled(void);
bool aiolab_rule_check(int rule, const char *func, void *ctx, char *buf,
                       size_t len);
bool aiolab_test_inject_bug(const char *name);
const char *aiolab_version(void);
