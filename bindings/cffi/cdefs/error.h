/* cdefs for aiolab/error.h (cffi API mode; SWIG %includes this too).
 * C-only (see bindings/c-only.txt): error_setg, error_setg_errno,
 * error_prepend, error_report, warn_report (printf-style variadics). */
typedef struct Error Error;
const char *error_get_pretty(const Error *err);
void error_free(Error *err);
void error_report_err(Error *err);
void error_propagate(Error **dst_errp, Error *local_err);
