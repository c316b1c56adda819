#ifndef CRYPTCOUNT_CLIBRNPLOADER_H
#define CRYPTCOUNT_CLIBRNPLOADER_H
// librnp loaded on first use. CLibRNP (the system library, found by pkg-config) declares librnp's
// API; this target defines each rnp_* function Ciphers/OpenPGP calls and forwards it to librnp,
// which it loads with dlopen the first time one is called. librnp and Botan cost a one-shot
// `cryptcount count` more start-up time (~3.5 ms of relocations and symbol lookups) than all the
// rest of it, and only the openpgp cipher needs them. The Makefile's builds find librnp through
// a copy of its .pc file whose -lrnp is a linker script linking it AS_NEEDED: no symbol of it is
// referenced, so the executable does not depend on it (a plain `swift build` links it as usual,
// and the loader finds it loaded). A new rnp_* call needs one line in loader.c's list (the link
// fails without it).
#include <stddef.h>

/// Why librnp could not be loaded (the dlerror text), or NULL when it is loaded or was not
/// needed yet. Every rnp_* call returns RNP_ERROR_NOT_IMPLEMENTED while it cannot be loaded.
const char *cryptcount_rnp_load_error(void);

/// librnp prints its own diagnostics with fprintf(stderr), a line or more for every damaged
/// message (its switch, RNP_LOG_CONSOLE, has no effect in Debian's build). This replaces stdio's
/// `stderr` with a line-buffered stream that drops librnp's lines (`[function() file.cpp:N] ...`)
/// and writes every other line to fd 2, so the Swift runtime's messages still get through
/// (cryptcount's own log writes fd 2 directly). Call once, before any thread starts.
void cryptcount_rnp_silence_diagnostics(void);

#endif
