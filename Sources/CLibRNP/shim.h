#ifndef CRYPTCOUNT_CLIBRNP_SHIM_H
#define CRYPTCOUNT_CLIBRNP_SHIM_H
// The system's librnp (apt: librnp-dev, pkg-config: librnp), the OpenPGP library behind
// Thunderbird. Only Ciphers/OpenPGP touches it.
#include <rnp/rnp.h>
#include <rnp/rnp_err.h>
#endif
