#include "fake_engine.h"
#include "test_support.h"

#include "elkrt/latency.h"
#include "elkrt/worker_report.h"

#include <atomic>
#include <chrono>
#include <thread>

using namespace elkrt;
using namespace elkrt_test;

namespace
{

StreamingConfig decoupledConfig (int block, InferencePool& pool, double budgetSeconds = 0.003)
{
    StreamingConfig config;
    config.maxHostBlock = block;
    config.mode = ExecutionMode::Decoupled;
    config.inferenceBudgetSeconds = budgetSeconds;
    config.measureRuns = 1;
    config.pool = &pool;
    return config;
}

// The host's real-time pace: one block per block period.
std::vector<float> streamPaced (StreamingModel& model, const std::vector<float>& input, int block)
{
    std::vector<float> output (input.size(), 0.0f);
    const auto period = std::chrono::duration<double> (block / 48000.0);
    auto due = std::chrono::steady_clock::now();
    for (std::size_t start = 0; start < input.size(); start += static_cast<std::size_t> (block))
    {
        const auto count = std::min<std::size_t> (static_cast<std::size_t> (block), input.size() - start);
        const float* in[1] = { input.data() + start };
        float* out[1] = { output.data() + start };
        model.process (in, out, static_cast<int> (count));
        due += std::chrono::duration_cast<std::chrono::steady_clock::duration> (period);
        // After a stall the clock resumes from now, as a sound card's does after an
        // xrun: missed periods are not made up in a burst the worker cannot follow.
        if (const auto now = std::chrono::steady_clock::now(); now > due + period)
            due = now;
        std::this_thread::sleep_until (due);
    }
    return output;
}

void checkShifted (const std::vector<float>& shifted, const std::vector<float>& original, std::size_t shift)
{
    for (std::size_t n = 0; n < shifted.size(); ++n)
    {
        const float expected = n < shift ? 0.0f : original[n - shift];
        if (shifted[n] != expected)
            fail (__FILE__, __LINE__, "sample " + std::to_string (n) + " is " + std::to_string (shifted[n])
                                          + ", expected " + std::to_string (expected));
    }
}

std::size_t firstNonZero (const std::vector<float>& signal)
{
    for (std::size_t n = 0; n < signal.size(); ++n)
        if (signal[n] != 0.0f)
            return n;
    return signal.size();
}

} // namespace

ELKRT_TEST (decoupled_offline_matches_inline_shifted)
{
    InferencePool pool ({ 2 });
    const auto input = testSignal (24000, 21);
    for (int64_t frame : { 576, 64, 100 })
        for (int block : { 64, 100, 128 })
        {
            auto inlined = statefulModel (frame);
            auto decoupled = statefulModel (frame);
            std::string error;
            CHECK (inlined->prepare (inlineConfig (block), error));
            CHECK (decoupled->prepare (decoupledConfig (block, pool), error));
            CHECK (decoupled->decoupled());
            decoupled->setOffline (true);
            const auto reference = stream (*inlined, input, { block });
            const auto output = stream (*decoupled, input, { block });
            CHECK (decoupled->latencySamples() > inlined->latencySamples());
            checkShifted (output, reference, static_cast<std::size_t> (decoupled->latencySamples() - inlined->latencySamples()));
            CHECK_EQ (decoupled->stats().underrunSamples, 0u);
        }
}

ELKRT_TEST (decoupled_offline_is_repeatable)
{
    InferencePool pool ({ 2 });
    const auto input = testSignal (12000, 22);
    auto model = contextModel (100, 2000);
    std::string error;
    CHECK (model->prepare (decoupledConfig (64, pool), error));
    model->setOffline (true);
    const auto first = stream (*model, input, { 64 });
    model->reset();
    const auto second = stream (*model, input, { 64 });
    CHECK (first == second);
    CHECK (model->prepare (decoupledConfig (64, pool), error));
    model->setOffline (true);
    CHECK (stream (*model, input, { 64 }) == first);
}

ELKRT_TEST (decoupled_realtime_matches_inline_shifted)
{
    // Paced like a host in real time, the worker keeps up (a generous budget on a
    // shared machine): no underrun, the same samples as inline, later by the latency.
    InferencePool pool ({ 1 });
    const auto input = testSignal (64 * 300, 23);
    for (int64_t frame : { 64, 576 })
    {
        auto inlined = statefulModel (frame);
        auto decoupled = statefulModel (frame);
        std::string error;
        CHECK (inlined->prepare (inlineConfig (64), error));
        CHECK (decoupled->prepare (decoupledConfig (64, pool, 0.02), error));
        const auto reference = stream (*inlined, input, { 64 });
        const auto output = streamPaced (*decoupled, input, 64);
        CHECK_EQ (decoupled->stats().underrunSamples, 0u);
        checkShifted (output, reference, static_cast<std::size_t> (decoupled->latencySamples() - inlined->latencySamples()));
    }
}

ELKRT_TEST (decoupled_impulse_delay_equals_latency)
{
    InferencePool pool ({ 1 });
    for (int block : { 64, 100, 128 })
        for (int offline = 0; offline < 2; ++offline)
        {
            auto model = identityModel (576);
            std::string error;
            CHECK (model->prepare (decoupledConfig (block, pool, 0.02), error));
            model->setOffline (offline == 1);
            std::vector<float> impulse (block * 40, 0.0f);
            impulse[0] = 1.0f;
            const auto output = offline ? stream (*model, impulse, { block }) : streamPaced (*model, impulse, block);
            CHECK_EQ (static_cast<int> (firstNonZero (output)), model->latencySamples());
            CHECK_EQ (model->stats().underrunSamples, 0u);
        }
}

ELKRT_TEST (decoupled_latency_uses_budget)
{
    InferencePool pool ({ 1, std::chrono::microseconds (20), std::chrono::microseconds (500) });
    for (int block : { 64, 100, 128 })
    {
        auto model = identityModel (576);
        std::string error;
        CHECK (model->prepare (decoupledConfig (block, pool, 0.004), error));
        const auto expected = decoupledLatency (576, block, true, (0.004 + 0.0005) * 48000.0);
        CHECK_EQ (model->latencySamples(), static_cast<int> (expected));
    }
    // Measured instead of given: slowest run times the safety factor, plus the wake-up bound.
    auto slow = std::make_unique<FakeEngine> (std::vector<TensorSpec> { floats ("x", { 1, 64 }) },
                                              std::vector<TensorSpec> { floats ("y", { 1, 64 }) },
                                              [] (FakeEngine&) {
                                                  std::this_thread::sleep_for (std::chrono::milliseconds (3));
                                                  return true;
                                              });
    ModelDescription description;
    description.tensors = { audio ("x", true, 1), audio ("y", false, 1) };
    StreamingModel model (std::move (slow), description);
    auto config = decoupledConfig (64, pool, 0.0);
    config.measureRuns = 2;
    std::string error;
    CHECK (model.prepare (config, error));
    CHECK (model.stats().measuredInferenceSeconds >= 0.003);
    const double inference = (model.stats().measuredInferenceSeconds * 2.0 + 0.0005) * 48000.0;
    CHECK_EQ (model.latencySamples(), static_cast<int> (decoupledLatency (64, 64, true, inference)));
    CHECK (model.latencySamples() >= 64 * 5); // > 2 * 3 ms = 288 samples
    // A quick run gets a block period of slack instead of twice almost nothing.
    auto quick = identityModel (64);
    CHECK (quick->prepare (config, error));
    const double measured = quick->stats().measuredInferenceSeconds;
    CHECK (measured * 2.0 < 64 / 48000.0);
    const double slack = (measured + 64 / 48000.0 + 0.0005) * 48000.0;
    CHECK_EQ (quick->latencySamples(), static_cast<int> (decoupledLatency (64, 64, true, slack)));
}

ELKRT_TEST (automatic_mode_follows_engine)
{
    InferencePool pool ({ 1 });
    auto config = decoupledConfig (64, pool);
    config.mode = ExecutionMode::Automatic;
    std::string error;
    auto safe = identityModel (64, true);
    CHECK (safe->prepare (config, error));
    CHECK (! safe->decoupled());
    CHECK_EQ (safe->latencySamples(), 0);
    auto unsafe = identityModel (64, false);
    CHECK (unsafe->prepare (config, error));
    CHECK (unsafe->decoupled());
    // Real-time safe but too slow for the block: decoupled as well.
    auto slow = std::make_unique<FakeEngine> (std::vector<TensorSpec> { floats ("x", { 1, 64 }) },
                                              std::vector<TensorSpec> { floats ("y", { 1, 64 }) },
                                              [] (FakeEngine&) {
                                                  std::this_thread::sleep_for (std::chrono::milliseconds (2));
                                                  return true;
                                              });
    ModelDescription description;
    description.tensors = { audio ("x", true, 1), audio ("y", false, 1) };
    StreamingModel slowModel (std::move (slow), description);
    CHECK (slowModel.prepare (config, error));
    CHECK (slowModel.decoupled());
}

ELKRT_TEST (pool_shared_by_instances)
{
    InferencePool pool ({ 2 });
    CHECK_EQ (pool.threadCount(), 2);
    constexpr int instances = 6;
    std::vector<std::unique_ptr<StreamingModel>> models;
    std::vector<std::vector<float>> inputs, outputs;
    for (int i = 0; i < instances; ++i)
    {
        models.push_back (statefulModel (i % 2 == 0 ? 64 : 576));
        std::string error;
        CHECK (models.back()->prepare (decoupledConfig (64, pool), error));
        models.back()->setOffline (true);
        inputs.push_back (testSignal (64 * 200, static_cast<unsigned> (30 + i)));
        outputs.emplace_back (inputs.back().size());
    }
    // Interleaved, as a host runs several plugins one after the other every block.
    for (std::size_t start = 0; start < inputs[0].size(); start += 64)
        for (int i = 0; i < instances; ++i)
        {
            const float* in[1] = { inputs[static_cast<std::size_t> (i)].data() + start };
            float* out[1] = { outputs[static_cast<std::size_t> (i)].data() + start };
            models[static_cast<std::size_t> (i)]->process (in, out, 64);
        }
    for (int i = 0; i < instances; ++i)
    {
        const auto& x = inputs[static_cast<std::size_t> (i)];
        const auto& y = outputs[static_cast<std::size_t> (i)];
        const auto delay = static_cast<std::size_t> (models[static_cast<std::size_t> (i)]->latencySamples());
        float s = 0.0f, c = 0.0f;
        for (std::size_t n = delay; n < y.size(); ++n)
            CHECK_NEAR (y[n], recursionStep (x[n - delay], s, c), 1e-4);
    }
    CHECK (pool.workersThatRan() >= 1 && pool.workersThatRan() <= 2);

    // The process-wide pool is one object (libelkrt_pool.so.1's); its size is fixed
    // by its first user.
    CHECK (&sharedPool() == &sharedPool());
    CHECK (sharedPoolStatus().processWide);
    CHECK (! configureSharedPool ({ 3 }));
}

ELKRT_TEST (pool_detach_waits_for_worker)
{
    InferencePool pool ({ 1 });
    std::atomic<bool> inside { false };
    std::atomic<int> started { 0 };
    auto engine = std::make_unique<FakeEngine> (std::vector<TensorSpec> { floats ("x", { 1, 64 }) },
                                                std::vector<TensorSpec> { floats ("y", { 1, 64 }) },
                                                [&] (FakeEngine&) {
                                                    inside = true;
                                                    ++started;
                                                    std::this_thread::sleep_for (std::chrono::milliseconds (30));
                                                    inside = false;
                                                    return true;
                                                });
    ModelDescription description;
    description.tensors = { audio ("x", true, 1), audio ("y", false, 1) };
    StreamingModel model (std::move (engine), description);
    std::string error;
    CHECK (model.prepare (decoupledConfig (64, pool), error));
    started = 0;
    std::vector<float> block (64, 0.5f), out (64);
    const float* in[1] = { block.data() };
    float* outs[1] = { out.data() };
    model.process (in, outs, 64);
    while (started.load() == 0)
        std::this_thread::sleep_for (std::chrono::microseconds (100));
    model.reset(); // must wait for the run in progress
    CHECK (! inside.load());
}

namespace
{

// The number after a key in workerReport()'s JSON.
double reported (const std::string& json, const std::string& key)
{
    const auto at = json.find ("\"" + key + "\": ");
    if (at == std::string::npos)
        fail (__FILE__, __LINE__, "no " + key + " in " + json);
    return std::stod (json.substr (at + key.size() + 4));
}

} // namespace

ELKRT_TEST (worker_report_shows_a_late_worker)
{
    // Fast while prepare() measures it, then 4 ms a frame against 1.33 ms blocks: the
    // audio thread stays quick, only the worker's report shows the dropouts.
    InferencePool pool ({ 1 });
    std::atomic<bool> slow { false };
    auto engine = std::make_unique<FakeEngine> (
        std::vector<TensorSpec> { floats ("x", { 1, 64 }) }, std::vector<TensorSpec> { floats ("y", { 1, 64 }) },
        [&slow] (FakeEngine& e) {
            if (slow.load())
                std::this_thread::sleep_for (std::chrono::milliseconds (4));
            std::copy_n (e.in (0), 64, e.out (0));
            return true;
        },
        false);
    ModelDescription description;
    description.tensors = { audio ("x", true, 1), audio ("y", false, 1) };
    auto late = std::make_unique<StreamingModel> (std::move (engine), description);
    auto onTime = identityModel (64);
    std::string error;
    // A generous budget for the one that keeps up (a shared machine); 2 ms for the
    // late one, half its run time.
    StreamingConfig config = decoupledConfig (64, pool, 0.02);
    config.timingCapacity = 1024;
    CHECK (onTime->prepare (config, error));
    const auto input = testSignal (64 * 200, 24);
    streamPaced (*onTime, input, 64);
    const auto quiet = workerReport();
    CHECK_EQ (reported (quiet, "models"), 1.0);
    CHECK_EQ (reported (quiet, "underrun_samples"), 0.0);
    CHECK (reported (quiet, "runs") >= 190.0);
    CHECK (reported (quiet, "budget_us") > 0.0);

    config.inferenceBudgetSeconds = 0.002;
    CHECK (late->prepare (config, error));
    slow = true;
    streamPaced (*late, input, 64);
    const auto loud = workerReport();
    CHECK_EQ (reported (loud, "models"), 2.0);
    CHECK (reported (loud, "underrun_samples") > 64.0 * 100);
    CHECK (reported (loud, "p99_us") > reported (loud, "budget_us"));
    char cut[16];
    CHECK_EQ (elkrt_worker_report (cut, sizeof (cut)), static_cast<int> (loud.size()));
    CHECK (std::string (cut) == loud.substr (0, 15));
    late.reset(); // unlisted with its destructor
    CHECK_EQ (reported (workerReport(), "models"), 1.0);
}
