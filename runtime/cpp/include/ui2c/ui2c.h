/* libui2c: the UI2C codec runtime behind a small C API.
 *
 * Handles are opaque.  Every function returns a ui2c_status; on failure
 * ui2c_last_error() holds a one-line message (per thread, valid until the next call
 * on that thread).  Buffers a function hands out stay valid until the next call on
 * the same handle.  Frames are 8-bit planar YUV (Y, then U, then V) of the stream's
 * chroma format, unpadded.  Streams are the container of runtime/CONTAINER.md.
 * An engine runs one graph call at a time: use an engine and the encoders/decoders
 * opened on it from one thread at a time (open one engine per thread to go parallel).
 */
#ifndef UI2C_UI2C_H
#define UI2C_UI2C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ui2c_status {
  UI2C_OK = 0,
  UI2C_ERR_ARGUMENT = 1,   /* bad argument (null handle, out-of-range value) */
  UI2C_ERR_ENGINE = 2,     /* engine directory missing, incomplete, stale or unloadable */
  UI2C_ERR_MISMATCH = 3,   /* stream made by another model, weights, tables or backend */
  UI2C_ERR_CORRUPT = 4,    /* stream data inconsistent (magic, CRC, impossible values) */
  UI2C_ERR_TRUNCATED = 5,  /* stream ends before the structure it announces */
  UI2C_ERR_VERSION = 6,    /* container version this build cannot read */
  UI2C_ERR_INPUT = 7,      /* frame or video input of the wrong size or format */
  UI2C_ERR_IO = 8,         /* file could not be read or written */
  UI2C_ERR_INTERNAL = 9    /* anything else (a bug: please report the message) */
} ui2c_status;

typedef enum ui2c_chroma { UI2C_CHROMA_420 = 0, UI2C_CHROMA_444 = 1 } ui2c_chroma;
/* Where 4:2:0 chroma samples sit (Y4M C420jpeg / C420mpeg2 / C420paldv).  Only a label:
 * the codec codes the planes as they are, and a decoder gives the source's siting back.
 * 4:4:4 must use UI2C_SITING_CENTER. */
typedef enum ui2c_siting { UI2C_SITING_CENTER = 0, UI2C_SITING_LEFT = 1, UI2C_SITING_PALDV = 2 } ui2c_siting;

typedef struct ui2c_video_info {
  uint32_t width, height;   /* luma size in pixels, unpadded */
  uint32_t fps_num, fps_den;
  ui2c_chroma chroma;
  uint32_t frame_count;     /* decoder: from the stream header, 0 = unknown */
  ui2c_siting siting;       /* zero-initialised: centred */
} ui2c_video_info;

typedef struct ui2c_encoder_options {
  int qp;                      /* 0..63 */
  uint32_t reset_interval;     /* 0 = only at scene cuts and the first frame */
  float scene_cut_threshold;   /* mean |dY| in [0,1]; <= 0 disables scene-cut detection */
  int reconstruct;             /* nonzero: keep the encoder's reconstruction (ui2c_encoder_recon) */
  int threads;                 /* entropy-coder threads, >= 1 */
  float drift_guard_db;        /* < 0: off; else reset after a unit this many dB under the last reset unit */
} ui2c_encoder_options;

typedef struct ui2c_engine ui2c_engine;
typedef struct ui2c_encoder ui2c_encoder;
typedef struct ui2c_decoder ui2c_decoder;

const char* ui2c_last_error(void);
const char* ui2c_status_name(ui2c_status status);
void ui2c_default_encoder_options(ui2c_encoder_options* options);
/* Bytes of one frame of the given size and chroma (0 if the size is invalid). */
size_t ui2c_frame_bytes(uint32_t width, uint32_t height, ui2c_chroma chroma);

/* An engine directory written by `ui2c build-engines --target aoti`. */
ui2c_status ui2c_engine_open(const char* engine_dir, ui2c_engine** engine);
/* "backend/device/precision/mode" the stream header records, e.g. "aoti/cpu/fp32/aoti". */
const char* ui2c_engine_backend(const ui2c_engine* engine);
void ui2c_engine_close(ui2c_engine* engine);

/* The encoder writes the sequence header first (frame count 0; a seekable writer may
 * patch it, see CONTAINER.md), then the bytes of every packet push/flush return. */
ui2c_status ui2c_encoder_open(ui2c_engine* engine, const ui2c_video_info* info, const ui2c_encoder_options* options,
                              ui2c_encoder** encoder);
ui2c_status ui2c_encoder_header(ui2c_encoder* encoder, uint32_t frame_count, const uint8_t** data, size_t* size);
/* Push one frame (ui2c_frame_bytes bytes); `data`/`size` get the packets completed by it
 * (possibly none: size 0), `frames` the number of frames they hold. */
ui2c_status ui2c_encoder_push(ui2c_encoder* encoder, const uint8_t* frame, size_t frame_size, const uint8_t** data,
                              size_t* size, uint32_t* frames);
ui2c_status ui2c_encoder_flush(ui2c_encoder* encoder, const uint8_t** data, size_t* size, uint32_t* frames);
/* Reconstruction of the i-th frame of the last push/flush (needs options.reconstruct). */
ui2c_status ui2c_encoder_recon(ui2c_encoder* encoder, uint32_t i, const uint8_t** frame, size_t* size);
void ui2c_encoder_close(ui2c_encoder* encoder);

/* Open on the sequence header at `data`; `consumed` gets the header size.  Refuses a
 * stream from another model setup (UI2C_ERR_MISMATCH). */
ui2c_status ui2c_decoder_open(ui2c_engine* engine, const uint8_t* data, size_t size, size_t* consumed,
                              ui2c_decoder** decoder);
ui2c_status ui2c_decoder_info(const ui2c_decoder* decoder, ui2c_video_info* info);
/* Decode the packet at `data`; `consumed` gets its size, `frames` its frame count.
 * A packet the container checks refuse (cut short, bad sync word or CRC) leaves the
 * decoder as it was, so a caller may call again with more data.  Any later failure (a
 * broken sequence rule, a corrupt entropy stream, an engine error) leaves the references
 * unknown, so every later decode and finish fails too: open a new decoder. */
ui2c_status ui2c_decoder_decode(ui2c_decoder* decoder, const uint8_t* data, size_t size, size_t* consumed,
                                uint32_t* frames);
ui2c_status ui2c_decoder_frame(ui2c_decoder* decoder, uint32_t i, const uint8_t** frame, size_t* size);
/* End of stream: UI2C_ERR_TRUNCATED if the header announced more frames than were decoded,
 * UI2C_ERR_CORRUPT if the stream held no packet at all. */
ui2c_status ui2c_decoder_finish(ui2c_decoder* decoder);
void ui2c_decoder_close(ui2c_decoder* decoder);

#ifdef __cplusplus
}
#endif

#endif /* UI2C_UI2C_H */
