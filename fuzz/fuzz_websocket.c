/*
 * fuzz_websocket.c - libFuzzer target for the WebSocket client's reading of a server's
 * bytes (src/deliver/websocket.c, issue 15): the frame parser and the message assembly run
 * over the input as one stream, as s2f_ws_receive runs them; the first byte picks the
 * message bound (1 B to 64 KiB) so that the limit paths are reached. Every frame the parser
 * accepts must lie inside the input, every completed message must respect the bound and be
 * UTF-8 when it is text, and every error must come with a message.
 */
#include "deliver/websocket.h"
#include "util/escape.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max = (size_t)1 << (data[0] % 17);
    const unsigned char *b = data + 1;
    size_t n = size - 1;
    s2f_ws_message m = {.max = max};
    for (;;) {
        s2f_ws_frame f;
        s2f_error err = {S2F_OK, ""};
        int r = s2f_ws_frame_parse(b, n, max, &f, &err);
        if (r < 0 && (!err.code || !err.message[0]))
            abort();
        if (r <= 0)
            break;
        if (f.header > n || f.length > n - f.header || f.length > max || f.masked)
            abort();
        if (f.opcode < 0x8) {
            int a = s2f_ws_message_add(&m, &f, b + f.header, &err);
            if (a < 0 && (!err.code || !err.message[0]))
                abort();
            if (a < 0)
                break;
            if (a == 1 && (m.len > max || m.data[m.len] != '\0' ||
                           (m.opcode == S2F_WS_TEXT && !s2f_escape_utf8_valid(m.data, m.len))))
                abort();
        } else if (!f.fin || f.length > 125) {
            abort();
        }
        b += f.header + (size_t)f.length;
        n -= f.header + (size_t)f.length;
    }
    s2f_ws_message_free(&m);
    return 0;
}
