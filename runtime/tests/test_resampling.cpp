// ResamplingModel: a model trained at another rate than the host's streams through
// libsamplerate both ways, delayed by exactly the whole-sample latency it reports.
#include "fake_engine.h"
#include "test_support.h"
#include "elkrt/resampling_model.h"

#include <cmath>
#include <vector>

using namespace elkrt;
using namespace elkrt_test;

namespace
{

constexpr double pi = 3.14159265358979323846;

std::vector<float> sine (std::size_t length, double hertz, double rate)
{
    std::vector<float> signal (length);
    for (std::size_t n = 0; n < length; ++n)
        signal[n] = static_cast<float> (0.5 * std::sin (2.0 * pi * hertz * static_cast<double> (n) / rate));
    return signal;
}

// Two channels in blocks taken in turn from `blocks`, through `model`.
std::vector<std::vector<float>> run (ResamplingModel& model, const std::vector<std::vector<float>>& input,
                                     const std::vector<int>& blocks)
{
    std::vector<std::vector<float>> output (input.size(), std::vector<float> (input[0].size(), 0.0f));
    std::size_t position = 0, turn = 0;
    while (position < input[0].size())
    {
        const auto count = std::min<std::size_t> (static_cast<std::size_t> (blocks[turn++ % blocks.size()]),
                                                  input[0].size() - position);
        const float* in[2] = { input[0].data() + position, input[1].data() + position };
        float* out[2] = { output[0].data() + position, output[1].data() + position };
        model.process (in, out, static_cast<int> (count));
        position += count;
    }
    return output;
}

// Max |out[n] - in[n - delay]| after the first `settle` samples past the delay.
double delayedError (const std::vector<float>& out, const std::vector<float>& in, int delay, std::size_t settle)
{
    double worst = 0.0;
    for (std::size_t n = static_cast<std::size_t> (delay) + settle; n < out.size(); ++n)
        worst = std::max (worst, static_cast<double> (std::abs (out[n] - in[n - static_cast<std::size_t> (delay)])));
    return worst;
}

} // namespace

ELKRT_TEST (resampling_delays_by_its_whole_sample_latency)
{
    // 44.1 kHz model, 48 kHz host: the identity model's output is its input, band-limited
    // twice and delayed by the reported latency, to the sample.
    for (int block : { 64, 100, 128 })
    {
        ResamplingModel model (identityModel (64, true, 44100.0), ResampleQuality::Medium);
        std::string error;
        CHECK (model.prepare (inlineConfig (block, 2), error));
        CHECK (model.converting());
        const int latency = model.latencySamples();
        // The model's own latency (inline: 64 - gcd(64, its blocks)) padded to 147-sample
        // steps at 44.1 kHz, 160 samples each at 48 kHz, plus the converters' look-ahead.
        CHECK (latency > model.converterDelaySamples());
        CHECK_EQ ((latency - model.converterDelaySamples()) % 160, 0);
        const std::vector<std::vector<float>> input { sine (48000, 1000.0, 48000.0), sine (48000, 3100.0, 48000.0) };
        const auto output = run (model, input, { block });
        CHECK_EQ (model.underrunSamples(), 0u);
        for (std::size_t c = 0; c < 2; ++c)
        {
            CHECK (delayedError (output[c], input[c], latency, 2000) < 2e-3);
            CHECK (delayedError (output[c], input[c], latency + 1, 2000) > 0.03);
            CHECK (delayedError (output[c], input[c], latency - 1, 2000) > 0.03);
        }
    }
}

ELKRT_TEST (resampling_takes_blocks_of_any_size_up_to_the_prepared_one)
{
    ResamplingModel fixed (identityModel (64, true, 16000.0), ResampleQuality::Fastest);
    ResamplingModel varying (identityModel (64, true, 16000.0), ResampleQuality::Fastest);
    std::string error;
    CHECK (fixed.prepare (inlineConfig (128, 2), error));
    CHECK (varying.prepare (inlineConfig (128, 2), error));
    CHECK_EQ (fixed.latencySamples(), varying.latencySamples());
    const std::vector<std::vector<float>> input { sine (24000, 700.0, 48000.0), sine (24000, 1900.0, 48000.0) };
    const auto a = run (fixed, input, { 128 });
    const auto b = run (varying, input, { 128, 1, 37, 100, 128, 5 });
    CHECK_EQ (varying.underrunSamples(), 0u);
    for (std::size_t c = 0; c < 2; ++c)
        for (std::size_t n = 0; n < a[c].size(); ++n)
            CHECK (std::abs (a[c][n] - b[c][n]) < 1e-6f);
    // reset() starts the stream over: the same output again.
    varying.reset();
    const auto again = run (varying, input, { 128, 1, 37, 100, 128, 5 });
    for (std::size_t c = 0; c < 2; ++c)
        CHECK (again[c] == b[c]);
}

ELKRT_TEST (resampling_at_the_models_rate_is_the_model_alone)
{
    ResamplingModel model (identityModel (64, true, 48000.0), ResampleQuality::Best);
    std::string error;
    CHECK (model.prepare (inlineConfig (100, 2), error));
    CHECK (! model.converting());
    CHECK_EQ (model.latencySamples(), 64 - 4);   // inline: F - gcd(F, H)
    const std::vector<std::vector<float>> input { testSignal (4800, 3), testSignal (4800, 4) };
    const auto output = run (model, input, { 100 });
    for (std::size_t c = 0; c < 2; ++c)
        CHECK (delayedError (output[c], input[c], 60, 0) == 0.0);
}

ELKRT_TEST (resampling_refuses_rates_it_cannot_convert)
{
    std::string error;
    ResamplingModel fractional (identityModel (64, true, 44100.5), ResampleQuality::Medium);
    CHECK (! fractional.prepare (inlineConfig (64, 1), error));
    CHECK (error.find ("whole numbers of Hz") != std::string::npos);
    ResamplingModel tiny (identityModel (64, true, 100.0), ResampleQuality::Medium);
    CHECK (! tiny.prepare (inlineConfig (64, 1), error));
    ResampleQuality quality;
    CHECK (parseResampleQuality ("best", quality) && quality == ResampleQuality::Best);
    CHECK (! parseResampleQuality ("sinc", quality));
}
