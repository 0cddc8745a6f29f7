/*
 * log.h: levelled logging to stderr, one line per event with a UTC
 * timestamp, for the daemon and the tools. Internal to dispatcher/.
 */
#ifndef FBXI_LOG_H
#define FBXI_LOG_H

enum { FBX_LOG_ERROR = 0, FBX_LOG_WARN, FBX_LOG_INFO, FBX_LOG_DEBUG };

void fbxi_log_set_level(int level);
int fbxi_log_level(void);
/* fbxi_log_parse_level - "error".."debug" -> level, or -1. */
int fbxi_log_parse_level(const char *s);
void fbxi_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define FBX_LOGE(...) fbxi_log(FBX_LOG_ERROR, __VA_ARGS__)
#define FBX_LOGW(...) fbxi_log(FBX_LOG_WARN, __VA_ARGS__)
#define FBX_LOGI(...) fbxi_log(FBX_LOG_INFO, __VA_ARGS__)
#define FBX_LOGD(...)                                                        \
	do {                                                                 \
		if (fbxi_log_level() >= FBX_LOG_DEBUG)                       \
			fbxi_log(FBX_LOG_DEBUG, __VA_ARGS__);                \
	} while (0)

#endif
