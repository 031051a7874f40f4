/* Error paths of the C API, from C: every call returns a status and a message, never
 * crashes.  argv[1] = a valid engine directory.  Exits 0 when every case returned the
 * expected status with a non-empty message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui2c/ui2c.h"

static int failures = 0;

static void expect(const char* what, ui2c_status got, ui2c_status want) {
  const char* msg = ui2c_last_error();
  const int ok = got == want && (want == UI2C_OK || (msg && msg[0]));
  printf("%s %s: %s (%d) %s\n", ok ? "ok  " : "FAIL", what, ui2c_status_name(got), (int)got, msg ? msg : "(null)");
  failures += !ok;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s ENGINE_DIR\n", argv[0]);
    return 2;
  }
  ui2c_engine* engine = NULL;
  expect("missing engine dir", ui2c_engine_open("/nonexistent/ui2c-engines", &engine), UI2C_ERR_ENGINE);
  expect("null engine dir", ui2c_engine_open(NULL, &engine), UI2C_ERR_ARGUMENT);
  expect("open engine", ui2c_engine_open(argv[1], &engine), UI2C_OK);
  if (!engine) return 1;

  ui2c_video_info info = {64, 48, 25, 1, UI2C_CHROMA_420, 0};
  ui2c_encoder_options options;
  ui2c_default_encoder_options(&options);
  ui2c_encoder* encoder = NULL;
  options.qp = 99;
  expect("qp out of range", ui2c_encoder_open(engine, &info, &options, &encoder), UI2C_ERR_ARGUMENT);
  options.qp = 20;
  ui2c_video_info odd = info;
  odd.width = 63;
  expect("odd 4:2:0 width", ui2c_encoder_open(engine, &odd, &options, &encoder), UI2C_ERR_INPUT);
  expect("open encoder", ui2c_encoder_open(engine, &info, &options, &encoder), UI2C_OK);
  const size_t bytes = ui2c_frame_bytes(info.width, info.height, info.chroma);
  unsigned char* frame = calloc(bytes + 16, 1);
  const uint8_t* data = NULL;
  size_t size = 0;
  uint32_t frames = 0;
  expect("wrong frame size", ui2c_encoder_push(encoder, frame, bytes + 16, &data, &size, &frames), UI2C_ERR_INPUT);
  expect("null frame", ui2c_encoder_push(encoder, NULL, bytes, &data, &size, &frames), UI2C_ERR_ARGUMENT);
  expect("recon without reconstruct", ui2c_encoder_recon(encoder, 0, &data, &size), UI2C_ERR_ARGUMENT);
  expect("push frame", ui2c_encoder_push(encoder, frame, bytes, &data, &size, &frames), UI2C_OK);
  expect("flush", ui2c_encoder_flush(encoder, &data, &size, &frames), UI2C_OK);

  ui2c_decoder* decoder = NULL;
  size_t used = 0;
  const uint8_t garbage[32] = "definitely not a UI2C stream...";
  expect("garbage stream", ui2c_decoder_open(engine, garbage, sizeof garbage, &used, &decoder), UI2C_ERR_CORRUPT);
  const uint8_t* header = NULL;
  size_t header_size = 0;
  expect("header", ui2c_encoder_header(encoder, 0, &header, &header_size), UI2C_OK);
  expect("truncated header", ui2c_decoder_open(engine, header, header_size - 3, &used, &decoder), UI2C_ERR_TRUNCATED);
  unsigned char* copy = malloc(header_size);
  memcpy(copy, header, header_size);
  copy[4] = 2;
  expect("future version", ui2c_decoder_open(engine, copy, header_size, &used, &decoder), UI2C_ERR_VERSION);
  memcpy(copy, header, header_size);
  copy[header_size - 6] ^= 1;
  expect("header CRC", ui2c_decoder_open(engine, copy, header_size, &used, &decoder), UI2C_ERR_CORRUPT);
  expect("open decoder", ui2c_decoder_open(engine, header, header_size, &used, &decoder), UI2C_OK);
  expect("truncated packet", ui2c_decoder_decode(decoder, garbage, 7, &used, &frames), UI2C_ERR_TRUNCATED);
  expect("bad sync", ui2c_decoder_decode(decoder, garbage, sizeof garbage, &used, &frames), UI2C_ERR_CORRUPT);
  expect("frame before decode", ui2c_decoder_frame(decoder, 0, &data, &size), UI2C_ERR_ARGUMENT);
  expect("null decoder", ui2c_decoder_finish(NULL), UI2C_ERR_ARGUMENT);

  free(copy);
  free(frame);
  ui2c_decoder_close(decoder);
  ui2c_encoder_close(encoder);
  ui2c_engine_close(engine);
  ui2c_engine_close(NULL);
  printf("%d failure(s)\n", failures);
  return failures != 0;
}
