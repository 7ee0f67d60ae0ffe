/* cdefs for aiolab/defer-call.h */
void defer_call_begin(void);
void defer_call_end(void);
void defer_call(QEMUBHFunc *fn, void *opaque);
