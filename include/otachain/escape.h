/* Escaping text for one line of output (error lines, warnings, status
 * lines): whatever a field holds (a newline in a name, a terminal escape
 * sequence in a hostile checkpoint origin), it prints as one line of
 * printable ASCII.
 *
 * Printable ASCII (0x20..0x7e) is copied as is; \n, \r and \t become "\n",
 * "\r" and "\t"; every other byte (other controls, DEL, anything >= 0x80)
 * becomes "\xHH". A backslash is not escaped, so escaping twice changes
 * nothing (the output is all printable ASCII already): callers may escape a
 * field and the sink may escape the whole line again.
 */
#ifndef OTACHAIN_ESCAPE_H
#define OTACHAIN_ESCAPE_H

#include <stddef.h>

/* Worst case: every input byte becomes four output bytes. */
#define OTA_ESCAPE_MAX(len) ((len)*4 + 1)

/* Writes the escaped form of s[0..len) into out (cap bytes, cap >= 4),
 * NUL-terminated. An escape is never cut in half: when the input does not
 * fit, the output ends in "..." instead. Returns strlen(out); 0 (out
 * untouched) when cap < 4. */
size_t ota_escape(char *out, size_t cap, const char *s, size_t len);

/* Whether s[0..len) needs no escaping (all printable ASCII). */
int ota_escape_clean(const char *s, size_t len);

#endif
