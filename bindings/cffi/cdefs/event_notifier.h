/* cdefs for aiolab/event_notifier.h */
typedef struct EventNotifier {
    int rfd;
    int wfd;
    bool initialized;
} EventNotifier;
typedef void EventNotifierHandler(EventNotifier *e);
int event_notifier_init(EventNotifier *e, int active);
void event_notifier_init_fd(EventNotifier *e, int fd);
void event_notifier_cleanup(EventNotifier *e);
int event_notifier_set(EventNotifier *e);
int event_notifier_test_and_clear(EventNotifier *e);
int event_notifier_get_fd(const EventNotifier *e);
