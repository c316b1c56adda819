// librnp, loaded on first use (see include/CLibRNPLoader.h): each rnp_* function the Swift side
// calls is defined here with librnp's own signature and forwards to librnp's, found with dlsym.
#define _GNU_SOURCE
#include "CLibRNPLoader.h"

#include <rnp/rnp.h>
#include <rnp/rnp_err.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

// X(name, (parameters), (arguments)) for functions returning rnp_result_t; V(...) for void ones.
#define CC_RNP_FUNCTIONS(X, V)                                                                           \
    V(rnp_buffer_clear, (void *ptr, size_t size), (ptr, size))                                            \
    V(rnp_buffer_destroy, (void *ptr), (ptr))                                                             \
    X(rnp_detect_homedir_info, (const char *homedir, char **pub_format, char **pub_path, char **sec_format, \
                                char **sec_path),                                                         \
      (homedir, pub_format, pub_path, sec_format, sec_path))                                             \
    X(rnp_ffi_create, (rnp_ffi_t * ffi, const char *pub_format, const char *sec_format),                 \
      (ffi, pub_format, sec_format))                                                                      \
    X(rnp_ffi_destroy, (rnp_ffi_t ffi), (ffi))                                                            \
    X(rnp_ffi_set_log_fd, (rnp_ffi_t ffi, int fd), (ffi, fd))                                             \
    X(rnp_ffi_set_pass_provider, (rnp_ffi_t ffi, rnp_password_cb getpasscb, void *getpasscb_ctx),        \
      (ffi, getpasscb, getpasscb_ctx))                                                                    \
    X(rnp_identifier_iterator_create, (rnp_ffi_t ffi, rnp_identifier_iterator_t * it, const char *type), \
      (ffi, it, type))                                                                                    \
    X(rnp_identifier_iterator_destroy, (rnp_identifier_iterator_t it), (it))                              \
    X(rnp_identifier_iterator_next, (rnp_identifier_iterator_t it, const char **identifier), (it, identifier)) \
    X(rnp_import_keys, (rnp_ffi_t ffi, rnp_input_t input, uint32_t flags, char **results),               \
      (ffi, input, flags, results))                                                                       \
    X(rnp_input_destroy, (rnp_input_t input), (input))                                                    \
    X(rnp_input_from_callback,                                                                            \
      (rnp_input_t * input, rnp_input_reader_t * reader, rnp_input_closer_t * closer, void *app_ctx),     \
      (input, reader, closer, app_ctx))                                                                   \
    X(rnp_input_from_memory, (rnp_input_t * input, const uint8_t buf[], size_t buf_len, bool do_copy),   \
      (input, buf, buf_len, do_copy))                                                                     \
    X(rnp_key_handle_destroy, (rnp_key_handle_t key), (key))                                              \
    X(rnp_key_have_secret, (rnp_key_handle_t key, bool *result), (key, result))                           \
    X(rnp_key_is_locked, (rnp_key_handle_t key, bool *result), (key, result))                             \
    X(rnp_key_to_json, (rnp_key_handle_t handle, uint32_t flags, char **result), (handle, flags, result)) \
    X(rnp_key_unlock, (rnp_key_handle_t key, const char *password), (key, password))                      \
    X(rnp_load_keys, (rnp_ffi_t ffi, const char *format, rnp_input_t input, uint32_t flags),             \
      (ffi, format, input, flags))                                                                        \
    X(rnp_locate_key,                                                                                     \
      (rnp_ffi_t ffi, const char *identifier_type, const char *identifier, rnp_key_handle_t *key),        \
      (ffi, identifier_type, identifier, key))                                                            \
    X(rnp_op_verify_create, (rnp_op_verify_t * op, rnp_ffi_t ffi, rnp_input_t input, rnp_output_t output), \
      (op, ffi, input, output))                                                                           \
    X(rnp_op_verify_destroy, (rnp_op_verify_t op), (op))                                                  \
    X(rnp_op_verify_execute, (rnp_op_verify_t op), (op))                                                  \
    X(rnp_op_verify_get_protection_info, (rnp_op_verify_t op, char **mode, char **cipher, bool *valid),  \
      (op, mode, cipher, valid))                                                                          \
    X(rnp_op_verify_set_flags, (rnp_op_verify_t op, uint32_t flags), (op, flags))                         \
    X(rnp_output_destroy, (rnp_output_t output), (output))                                                \
    X(rnp_output_to_callback,                                                                             \
      (rnp_output_t * output, rnp_output_writer_t * writer, rnp_output_closer_t * closer, void *app_ctx), \
      (output, writer, closer, app_ctx))

// One pointer per function, of the declared function's own type (a mismatch with rnp.h fails
// to compile).
#define CC_POINTER(name, params, args) static __typeof__(name) *cc_##name;
CC_RNP_FUNCTIONS(CC_POINTER, CC_POINTER)

static pthread_once_t cc_once = PTHREAD_ONCE_INIT;
static int cc_loaded;
static char cc_error[512];

/// The directory of the running executable, with a trailing '/', or "" when unknown.
static void cc_exe_dir(char *out, size_t capacity) {
    out[0] = 0;
    ssize_t n = readlink("/proc/self/exe", out, capacity - 1);
    if (n <= 0) return;
    out[n] = 0;
    char *slash = strrchr(out, '/');
    if (slash) slash[1] = 0; else out[0] = 0;
}

static void cc_load(void) {
    // First a library next to the executable (the wheel's libcryptcount-rnp.so, whose
    // dependencies are the wheel's own copies of librnp and Botan), then the system's librnp.
    char path[4096 + 32];
    cc_exe_dir(path, 4096);
    void *handle = NULL;
    if (path[0]) {
        strcat(path, "libcryptcount-rnp.so");
        handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    }
    if (!handle) handle = dlopen("librnp.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        snprintf(cc_error, sizeof cc_error, "cannot load librnp: %s", why ? why : "unknown error");
        return;
    }
#define CC_RESOLVE(name, params, args)                                                                  \
    cc_##name = (__typeof__(name) *)dlsym(handle, #name);                                               \
    if (!cc_##name) {                                                                                   \
        snprintf(cc_error, sizeof cc_error, "librnp has no %s", #name);                                 \
        return;                                                                                         \
    }
    CC_RNP_FUNCTIONS(CC_RESOLVE, CC_RESOLVE)
    cc_loaded = 1;
}

static int cc_ready(void) {
    pthread_once(&cc_once, cc_load);
    return cc_loaded;
}

const char *cryptcount_rnp_load_error(void) { return cc_error[0] ? cc_error : NULL; }

// A line as librnp's RNP_LOG writes it: "[name() path.cpp:123] ", then the message.
static int cc_is_rnp_line(const char *buf, size_t size) {
    if (size < 2 || buf[0] != '[') return 0;
    const char *end = memchr(buf, ']', size);
    if (!end) return 0;
    const char *paren = memchr(buf, '(', (size_t)(end - buf));
    const char *colon = memrchr(buf, ':', (size_t)(end - buf));
    if (!paren || !colon || colon + 1 == end) return 0;
    for (const char *d = colon + 1; d < end; d++) {
        if (*d < '0' || *d > '9') return 0;
    }
    return memmem(buf, (size_t)(colon - buf), ".c", 2) != NULL;  // .cpp, .c
}

static ssize_t cc_stderr_write(void *cookie, const char *buf, size_t size) {
    (void)cookie;
    if (cc_is_rnp_line(buf, size)) return (ssize_t)size;
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(2, buf + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return done > 0 ? (ssize_t)done : -1;
        done += (size_t)n;
    }
    return (ssize_t)size;
}

void cryptcount_rnp_silence_diagnostics(void) {
    cookie_io_functions_t io = {.read = NULL, .write = cc_stderr_write, .seek = NULL, .close = NULL};
    FILE *filtered = fopencookie(NULL, "w", io);
    if (!filtered) return;
    // Line-buffered: each line reaches cc_stderr_write whole (RNP_LOG writes one in three calls).
    if (setvbuf(filtered, NULL, _IOLBF, 8192) != 0) {
        fclose(filtered);
        return;
    }
    stderr = filtered;
}

#define CC_FORWARD(name, params, args)                                                                  \
    rnp_result_t name params {                                                                          \
        if (!cc_ready()) return RNP_ERROR_NOT_IMPLEMENTED;                                              \
        return cc_##name args;                                                                          \
    }
// Buffers only come from librnp: with it not loaded there is nothing to clear or free.
#define CC_FORWARD_VOID(name, params, args)                                                             \
    void name params {                                                                                  \
        if (cc_ready()) cc_##name args;                                                                 \
    }
CC_RNP_FUNCTIONS(CC_FORWARD, CC_FORWARD_VOID)
