/* Error paths of the C API, from C: every call returns a status and a message, never
 * crashes.  argv[1] = a valid engine directory.  Exits 0 when every case returned the
 * expected status with a non-empty message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui2c/ui2c.h"

static int failures = 0;

static void expect_message(const char* what, const char* part) {
  const int ok = strstr(ui2c_last_error(), part) != NULL;
  printf("%s %s: '%s' in '%s'\n", ok ? "ok  " : "FAIL", what, part, ui2c_last_error());
  failures += !ok;
}

/* zlib's CRC-32 (CONTAINER.md), bit by bit: the test edits a packet and keeps it valid. */
static uint32_t crc32_update(uint32_t crc, const uint8_t* p, size_t n) {
  crc = ~crc;
  while (n--) {
    crc ^= *p++;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

/* Packet 0 with its slot-0 qp set to `qp` and the CRC (over bytes 4..15, then the
 * payload) fixed; CONTAINER.md §2. */
static uint8_t* with_qp(const uint8_t* packet, size_t size, uint8_t qp) {
  uint8_t* copy = malloc(size);
  memcpy(copy, packet, size);
  copy[9] = qp;
  const uint32_t crc = crc32_update(crc32_update(0, copy + 4, 12), copy + 20, size - 20);
  for (int k = 0; k < 4; ++k) copy[16 + k] = (uint8_t)(crc >> (24 - 8 * k));
  return copy;
}

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
  ui2c_video_info tiny = info;
  tiny.width = tiny.height = 16;  /* padded 16x16: under the packages' dynamic range */
  expect("frame size outside the packages' range", ui2c_encoder_open(engine, &tiny, &options, &encoder),
         UI2C_ERR_INPUT);
  expect_message("... names the range", "range the engine's packages were built for");
  expect("open encoder", ui2c_encoder_open(engine, &info, &options, &encoder), UI2C_OK);
  const size_t bytes = ui2c_frame_bytes(info.width, info.height, info.chroma);
  unsigned char* frame = calloc(bytes + 16, 1);
  const uint8_t* data = NULL;
  size_t size = 0;
  uint32_t frames = 0;
  expect("wrong frame size", ui2c_encoder_push(encoder, frame, bytes + 16, &data, &size, &frames), UI2C_ERR_INPUT);
  expect("null frame", ui2c_encoder_push(encoder, NULL, bytes, &data, &size, &frames), UI2C_ERR_ARGUMENT);
  expect("recon without reconstruct", ui2c_encoder_recon(encoder, 0, &data, &size), UI2C_ERR_ARGUMENT);
  expect("null encoder push", ui2c_encoder_push(NULL, frame, bytes, &data, &size, &frames), UI2C_ERR_ARGUMENT);
  expect("null encoder flush", ui2c_encoder_flush(NULL, &data, &size, &frames), UI2C_ERR_ARGUMENT);
  expect("null encoder recon", ui2c_encoder_recon(NULL, 0, &data, &size), UI2C_ERR_ARGUMENT);
  expect("null encoder header", ui2c_encoder_header(NULL, 0, &data, &size), UI2C_ERR_ARGUMENT);
  expect("push frame", ui2c_encoder_push(encoder, frame, bytes, &data, &size, &frames), UI2C_OK);
  expect("flush", ui2c_encoder_flush(encoder, &data, &size, &frames), UI2C_OK);
  uint8_t* packet = malloc(size);
  const size_t packet_size = size;
  memcpy(packet, data, size);

  /* more threads than the system gives (or the work needs) codes, slower, never aborts */
  ui2c_encoder* many = NULL;
  options.threads = 100000;
  expect("open encoder, 100000 threads", ui2c_encoder_open(engine, &info, &options, &many), UI2C_OK);
  expect("push, 100000 threads", ui2c_encoder_push(many, frame, bytes, &data, &size, &frames), UI2C_OK);
  expect("flush, 100000 threads", ui2c_encoder_flush(many, &data, &size, &frames), UI2C_OK);
  ui2c_encoder_close(many);
  options.threads = 1;

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
  copy[4] = (unsigned char)(header[4] + 1);
  expect("future version", ui2c_decoder_open(engine, copy, header_size, &used, &decoder), UI2C_ERR_VERSION);
  memcpy(copy, header, header_size);
  copy[header_size - 6] ^= 1;
  expect("header CRC", ui2c_decoder_open(engine, copy, header_size, &used, &decoder), UI2C_ERR_CORRUPT);
  expect("open decoder", ui2c_decoder_open(engine, header, header_size, &used, &decoder), UI2C_OK);
  expect("truncated packet", ui2c_decoder_decode(decoder, garbage, 7, &used, &frames), UI2C_ERR_TRUNCATED);
  expect("bad sync", ui2c_decoder_decode(decoder, garbage, sizeof garbage, &used, &frames), UI2C_ERR_CORRUPT);
  expect("frame before decode", ui2c_decoder_frame(decoder, 0, &data, &size), UI2C_ERR_ARGUMENT);
  expect("no packets", ui2c_decoder_finish(decoder), UI2C_ERR_CORRUPT);
  expect("null decoder finish", ui2c_decoder_finish(NULL), UI2C_ERR_ARGUMENT);
  expect("null decoder decode", ui2c_decoder_decode(NULL, packet, packet_size, &used, &frames), UI2C_ERR_ARGUMENT);
  expect("null decoder frame", ui2c_decoder_frame(NULL, 0, &data, &size), UI2C_ERR_ARGUMENT);
  expect("null decoder info", ui2c_decoder_info(NULL, &info), UI2C_ERR_ARGUMENT);
  /* a qp past the networks' tables is refused before any stage runs; the decoder then
   * refuses to go on (its references are unknown), even with a good packet */
  uint8_t* bad_qp = with_qp(packet, packet_size, 72);
  expect("qp past the tables", ui2c_decoder_decode(decoder, bad_qp, packet_size, &used, &frames), UI2C_ERR_CORRUPT);
  expect("decode after a failed packet", ui2c_decoder_decode(decoder, packet, packet_size, &used, &frames),
         UI2C_ERR_CORRUPT);
  expect_message("... names what to do", "open a new decoder");
  expect("finish after a failed packet", ui2c_decoder_finish(decoder), UI2C_ERR_CORRUPT);
  ui2c_decoder_close(decoder);
  decoder = NULL;
  expect("reopen decoder", ui2c_decoder_open(engine, header, header_size, &used, &decoder), UI2C_OK);
  expect("decode the good packet", ui2c_decoder_decode(decoder, packet, packet_size, &used, &frames), UI2C_OK);
  expect("frame 0", ui2c_decoder_frame(decoder, 0, &data, &size), UI2C_OK);
  expect("finish", ui2c_decoder_finish(decoder), UI2C_OK);
  free(bad_qp);
  free(packet);

  free(copy);
  free(frame);
  ui2c_decoder_close(decoder);
  ui2c_encoder_close(encoder);
  ui2c_engine_close(engine);
  ui2c_engine_close(NULL);
  printf("%d failure(s)\n", failures);
  return failures != 0;
}
