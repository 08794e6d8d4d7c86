#include "fake_engine.h"
#include "test_support.h"

#include "elkrt/latency.h"

using namespace elkrt;
using namespace elkrt_test;

namespace
{

// out[n] == in[n - delay] (zeros before the start), to the last sample.
void checkDelayed (const std::vector<float>& input, const std::vector<float>& output, int64_t delay)
{
    for (std::size_t n = 0; n < output.size(); ++n)
    {
        const float expected = static_cast<int64_t> (n) < delay ? 0.0f : input[n - static_cast<std::size_t> (delay)];
        if (output[n] != expected)
            fail (__FILE__, __LINE__, "sample " + std::to_string (n) + " is " + std::to_string (output[n]) + ", expected "
                                          + std::to_string (expected) + " (delay " + std::to_string (delay) + ")");
    }
}

} // namespace

ELKRT_TEST (inline_identity_delay_equals_latency)
{
    const auto input = testSignal (20000);
    for (int64_t frame : { 576, 64, 100, 128, 1 })
        for (int block : { 64, 100, 128, 576, 1000 })
        {
            auto model = identityModel (frame);
            std::string error;
            CHECK (model->prepare (inlineConfig (block), error));
            CHECK (! model->decoupled());
            CHECK_EQ (model->latencySamples(), static_cast<int> (inlineLatency (frame, block, true)));
            const auto output = stream (*model, input, { block });
            checkDelayed (input, output, model->latencySamples());
            CHECK_EQ (model->stats().underrunSamples, 0u);
        }
}

ELKRT_TEST (inline_impulse_delay_equals_latency)
{
    for (int block : { 64, 100, 128 })
    {
        auto model = identityModel (576);
        std::string error;
        CHECK (model->prepare (inlineConfig (block), error));
        std::vector<float> impulse (8000, 0.0f);
        impulse[0] = 1.0f;
        const auto output = stream (*model, impulse, { block });
        std::size_t peak = 0;
        for (std::size_t n = 0; n < output.size(); ++n)
            if (output[n] != 0.0f)
            {
                peak = n;
                break;
            }
        CHECK_EQ (static_cast<int> (peak), model->latencySamples());
        CHECK_EQ (output[peak], 1.0f);
    }
}

ELKRT_TEST (inline_variable_blocks)
{
    // A host that changes its block size (up to the prepared maximum): latency F - 1.
    const auto input = testSignal (30000, 3);
    for (int64_t frame : { 576, 64, 100 })
    {
        auto model = identityModel (frame);
        auto config = inlineConfig (128);
        config.fixedHostBlock = false;
        std::string error;
        CHECK (model->prepare (config, error));
        CHECK_EQ (model->latencySamples(), static_cast<int> (frame - 1));
        const auto output = stream (*model, input, { 128, 1, 77, 64, 3, 100, 128, 0, 13 });
        checkDelayed (input, output, model->latencySamples());
        CHECK_EQ (model->stats().underrunSamples, 0u);
    }
}

ELKRT_TEST (inline_never_pads_partial_frame)
{
    // Every model call sees only real input samples: a frame is run only once full.
    const int64_t frame = 576;
    std::vector<float> seen;
    auto engine = std::make_unique<FakeEngine> (
        std::vector<TensorSpec> { floats ("x", { 1, frame }) }, std::vector<TensorSpec> { floats ("y", { 1, frame }) },
        [&seen, frame] (FakeEngine& e) {
            seen.insert (seen.end(), e.in (0), e.in (0) + frame);
            std::copy (e.in (0), e.in (0) + frame, e.out (0));
            return true;
        });
    ModelDescription description;
    description.tensors = { audio ("x", true, 1), audio ("y", false, 1) };
    StreamingModel model (std::move (engine), description);
    std::string error;
    CHECK (model.prepare (inlineConfig (100), error));
    seen.clear(); // the measuring runs in prepare()
    std::vector<float> input (5000);
    for (std::size_t n = 0; n < input.size(); ++n)
        input[n] = static_cast<float> (n + 1);
    stream (model, input, { 100 });
    CHECK_EQ (seen.size(), (5000u / 576u) * 576u);
    for (std::size_t n = 0; n < seen.size(); ++n)
        CHECK_EQ (seen[n], static_cast<float> (n + 1));
}

ELKRT_TEST (state_feedback_matches_recursion)
{
    const auto input = testSignal (10000, 5);
    std::vector<float> reference (input.size());
    float s = 0.0f, c = 0.0f;
    for (std::size_t n = 0; n < input.size(); ++n)
        reference[n] = recursionStep (input[n], s, c);
    for (int64_t frame : { 64, 100, 576 })
        for (int block : { 64, 100, 128 })
        {
            auto model = statefulModel (frame);
            std::string error;
            CHECK (model->prepare (inlineConfig (block), error));
            const auto output = stream (*model, input, { block });
            const auto delay = static_cast<std::size_t> (model->latencySamples());
            for (std::size_t n = delay; n < output.size(); ++n)
                CHECK_NEAR (output[n], reference[n - delay], 1e-4);
        }
}

ELKRT_TEST (state_feedback_matches_manual_frames)
{
    // The same engine driven by hand, carrying h from each call to the next.
    const int64_t frame = 64;
    const auto input = testSignal (64 * 50, 7);
    auto manual = statefulEngine (frame);
    std::vector<float> reference;
    float h[2] = { 0.0f, 0.0f };
    for (std::size_t start = 0; start < input.size(); start += frame)
    {
        std::copy (h, h + 2, manual->in (0));
        std::copy (input.begin() + static_cast<long> (start), input.begin() + static_cast<long> (start + frame), manual->in (1));
        manual->run();
        reference.insert (reference.end(), manual->out (0), manual->out (0) + frame);
        std::copy (manual->out (1), manual->out (1) + 2, h);
    }
    auto model = statefulModel (frame);
    std::string error;
    CHECK (model->prepare (inlineConfig (64), error));
    CHECK_EQ (model->latencySamples(), 0);
    const auto output = stream (*model, input, { 64 });
    for (std::size_t n = 0; n < output.size(); ++n)
        CHECK_EQ (output[n], reference[n]);
}

ELKRT_TEST (past_context_matches_full_signal)
{
    const auto input = testSignal (20000, 9);
    for (int64_t context : { 4092, 1, 100 })
        for (int block : { 64, 100, 128 })
        {
            auto model = contextModel (64, context);
            std::string error;
            CHECK (model->prepare (inlineConfig (block), error));
            CHECK_EQ (model->pastContext(), static_cast<int> (context));
            const auto output = stream (*model, input, { block });
            const auto delay = model->latencySamples();
            for (int64_t n = delay; n < static_cast<int64_t> (output.size()); ++n)
                CHECK_EQ (output[static_cast<std::size_t> (n)], contextReference (input, n - delay, context));
        }
}

ELKRT_TEST (reset_clears_state_and_past)
{
    const auto input = testSignal (3000, 11);
    for (int kind = 0; kind < 2; ++kind)
    {
        auto model = kind == 0 ? statefulModel (64) : contextModel (64, 1000);
        std::string error;
        CHECK (model->prepare (inlineConfig (100), error));
        const auto first = stream (*model, input, { 100 });
        stream (*model, testSignal (777, 12), { 100 }); // leaves state, past and a partial frame
        model->reset();
        const auto again = stream (*model, input, { 100 });
        CHECK (first == again);
    }
}

ELKRT_TEST (mono_model_one_lane_per_host_channel)
{
    // A mono stateful model on a stereo host: each channel has its own state.
    auto model = statefulModel (64);
    auto config = inlineConfig (64, 2);
    std::string error;
    CHECK (model->prepare (config, error));
    CHECK_EQ (model->lanes(), 2);
    const auto left = testSignal (6400, 13), right = testSignal (6400, 14);
    std::vector<float> outLeft (left.size()), outRight (right.size());
    for (std::size_t start = 0; start < left.size(); start += 64)
    {
        const float* in[2] = { left.data() + start, right.data() + start };
        float* out[2] = { outLeft.data() + start, outRight.data() + start };
        model->process (in, out, 64);
    }
    for (int channel = 0; channel < 2; ++channel)
    {
        const auto& x = channel == 0 ? left : right;
        const auto& y = channel == 0 ? outLeft : outRight;
        float s = 0.0f, c = 0.0f;
        for (std::size_t n = 0; n < x.size(); ++n)
            CHECK_NEAR (y[n], recursionStep (x[n], s, c), 1e-4);
    }
}

ELKRT_TEST (stereo_model_channel_layout)
{
    // A two-channel model [1, 2, F] (channel axis 1, time axis 2): y0 = x0 + 0.5 x1, y1 = x1 - x0.
    const int64_t frame = 32;
    auto engine = std::make_unique<FakeEngine> (
        std::vector<TensorSpec> { floats ("x", { 1, 2, frame }) }, std::vector<TensorSpec> { floats ("y", { 1, 2, frame }) },
        [frame] (FakeEngine& e) {
            for (int64_t t = 0; t < frame; ++t)
            {
                e.out (0)[t] = e.in (0)[t] + 0.5f * e.in (0)[frame + t];
                e.out (0)[frame + t] = e.in (0)[frame + t] - e.in (0)[t];
            }
            return true;
        });
    ModelDescription description;
    description.tensors = { audio ("x", true, 2, 1), audio ("y", false, 2, 1) };
    StreamingModel model (std::move (engine), description);
    std::string error;
    CHECK (model.prepare (inlineConfig (64, 2), error));
    CHECK_EQ (model.lanes(), 1);
    const auto left = testSignal (640, 15), right = testSignal (640, 16);
    std::vector<float> outLeft (640), outRight (640);
    for (std::size_t start = 0; start < 640; start += 64)
    {
        const float* in[2] = { left.data() + start, right.data() + start };
        float* out[2] = { outLeft.data() + start, outRight.data() + start };
        model.process (in, out, 64);
    }
    for (std::size_t n = 0; n < 640; ++n)
    {
        CHECK_EQ (outLeft[n], left[n] + 0.5f * right[n]);
        CHECK_EQ (outRight[n], right[n] - left[n]);
    }
    // Three host channels for a two-channel model: refused.
    StreamingModel other (std::make_unique<FakeEngine> (std::vector<TensorSpec> { floats ("x", { 1, 2, frame }) },
                                                        std::vector<TensorSpec> { floats ("y", { 1, 2, frame }) },
                                                        [] (FakeEngine&) { return true; }),
                          description);
    CHECK (! other.prepare (inlineConfig (64, 3), error));
}

ELKRT_TEST (constant_input_fixed_at_prepare)
{
    // An int64 sample-rate input: y = x * sr / 48000.
    const int64_t frame = 16;
    auto engine = std::make_unique<FakeEngine> (
        std::vector<TensorSpec> { floats ("x", { 1, frame }), TensorSpec { "sr", DType::Int64, { 1 } } },
        std::vector<TensorSpec> { floats ("y", { 1, frame }), floats ("level", { 1 }) },
        [frame] (FakeEngine& e) {
            const auto rate = static_cast<float> (e.input (1).as<int64_t>()[0]);
            for (int64_t t = 0; t < frame; ++t)
                e.out (0)[t] = e.in (0)[t] * rate / 48000.0f;
            return true;
        });
    ModelDescription description;
    TensorBinding rate;
    rate.name = "sr";
    rate.role = TensorRole::Constant;
    rate.constantValue = 96000;
    TensorBinding level;
    level.name = "level";
    level.isInput = false;
    level.role = TensorRole::Extra;
    description.tensors = { audio ("x", true, 1), audio ("y", false, 1), rate, level };
    StreamingModel model (std::move (engine), description);
    std::string error;
    CHECK (model.prepare (inlineConfig (16), error));
    const auto input = testSignal (160, 17);
    const auto output = stream (model, input, { 16 });
    for (std::size_t n = 0; n < input.size(); ++n)
        CHECK_EQ (output[n], input[n] * 2.0f);
}

ELKRT_TEST (failed_run_outputs_silence)
{
    auto engine = std::make_unique<FakeEngine> (std::vector<TensorSpec> { floats ("x", { 1, 8 }) },
                                                std::vector<TensorSpec> { floats ("y", { 1, 8 }) },
                                                [] (FakeEngine& e) {
                                                    std::fill (e.out (0), e.out (0) + 8, 0.75f);
                                                    return false;
                                                });
    ModelDescription description;
    description.tensors = { audio ("x", true, 1), audio ("y", false, 1) };
    StreamingModel model (std::move (engine), description);
    std::string error;
    CHECK (model.prepare (inlineConfig (8), error));
    const auto output = stream (model, testSignal (80, 18), { 8 });
    for (float sample : output)
        CHECK_EQ (sample, 0.0f);
    CHECK_EQ (model.stats().failedRuns, 10u);
}

ELKRT_TEST (block_larger_than_prepared_is_split)
{
    // A host that sends more than it said: handled in prepared-size parts, in place.
    auto model = identityModel (64);
    std::string error;
    CHECK (model->prepare (inlineConfig (64), error));
    auto samples = testSignal (640, 19);
    const auto original = samples;
    float* buffer[1] = { samples.data() };
    model->process (buffer, buffer, 640);
    CHECK (samples == original);
    CHECK_EQ (model->stats().underrunSamples, 0u);
}
