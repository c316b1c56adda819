#ifndef CRYPTCOUNT_CMSGPACK_SHIM_H
#define CRYPTCOUNT_CMSGPACK_SHIM_H
// The system's msgpack-c (apt: libmsgpack-dev, pkg-config: msgpack).
#include <msgpack.h>
#endif
