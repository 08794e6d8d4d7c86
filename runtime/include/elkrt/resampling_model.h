// A StreamingModel trained at another rate than the host's: each host channel is
// converted to the model's rate (libsamplerate's band-limited sinc converters), the
// model streams there, and its output is converted back. Sushi on Elk runs at 48 kHz;
// a model trained at 16, 22.05 or 44.1 kHz then runs as it was trained.
//
// Exact, and at a whole-sample latency: libsamplerate's output is aligned with its
// input (no delay of its own), so a chain of these is a delay only: the converters'
// look-ahead (taken up by a FIFO of zeros at the host rate, measured in prepare) plus
// the model's own latency, padded at the model rate to a multiple of
// model_rate / gcd(rates) samples, which is a whole number of host samples.
// process() is real-time safe: libsamplerate allocates only in src_new (prepare).
#pragma once

#include "elkrt/frame_fifo.h"
#include "elkrt/streaming_model.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

typedef struct SRC_STATE_tag SRC_STATE;

namespace elkrt
{

enum class ResampleQuality
{
    Fastest, // SRC_SINC_FASTEST: 97 dB SNR, 80 % bandwidth
    Medium,  // SRC_SINC_MEDIUM_QUALITY: 97 dB, 90 %
    Best,    // SRC_SINC_BEST_QUALITY: 97 dB, 97 %, the most CPU
};

// "fastest", "medium" or "best"; false for anything else.
bool parseResampleQuality (const std::string& text, ResampleQuality& quality);

class ResamplingModel final
{
public:
    ResamplingModel (std::unique_ptr<StreamingModel> model, ResampleQuality quality);
    ~ResamplingModel();
    ResamplingModel (const ResamplingModel&) = delete;
    ResamplingModel& operator= (const ResamplingModel&) = delete;

    // Not real-time safe. `config` is the host's (its rate, channels, block); the model
    // is prepared at its description's sample rate. A model without a rate, or at the
    // host's, streams unconverted. On false, error says why.
    bool prepare (const StreamingConfig& config, std::string& error);

    // Not real-time safe: the model's reset, the converters' and the FIFOs'.
    void reset();
    void setOffline (bool offline) { streaming->setOffline (offline); }

    // Real-time safe; as StreamingModel::process, at the host's rate.
    void process (const float* const* input, float* const* output, int numSamples) noexcept;

    int latencySamples() const noexcept { return static_cast<int> (latency); }
    bool converting() const noexcept { return isConverting; }
    // The host-rate samples of zeros that absorb the converters' look-ahead.
    int converterDelaySamples() const noexcept { return static_cast<int> (lookAhead); }
    // Output samples that were not ready (zeros instead; none when prepared right).
    uint64_t underrunSamples() const noexcept { return underruns; }
    StreamingModel& model() noexcept { return *streaming; }

private:
    void freeConverters();
    bool makeConverters (std::string& error);
    void resetConverters() noexcept;
    void resetConversion() noexcept; // converters, FIFOs refilled with their zeros, counters
    void processPart (const float* const* input, float* const* output, std::size_t count) noexcept;

    std::unique_ptr<StreamingModel> streaming;
    ResampleQuality quality;
    bool isConverting = false;
    double toModel = 1.0, toHost = 1.0;    // rate ratios (output / input)
    std::size_t channels = 1, maxHostBlock = 0, maxModelBlock = 0;
    std::size_t lookAhead = 0;             // host-rate zeros before the first output
    std::size_t modelPadding = 0;          // model-rate zeros: the model's latency to a whole host sample
    int64_t latency = 0;
    uint64_t underruns = 0, owed = 0;

    std::vector<SRC_STATE*> down, up;      // one converter per channel and direction
    std::vector<std::vector<float>> modelIn, modelOut, hostOut;
    std::vector<const float*> modelInPointers;
    std::vector<float*> modelOutPointers;
    std::vector<FrameFifo> padding, delivered;  // per channel: model rate, host rate
};

} // namespace elkrt
