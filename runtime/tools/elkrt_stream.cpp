// elkrt_stream: a model and its description, a raw float32 file streamed through
// StreamingModel in host blocks, the output written as raw float32. For tests and
// benches: it prints one JSON line with the latency and counters.
//
//   elkrt_stream --engine onnx --model M.onnx --roles M.roles --input in.f32 --output out.f32
//                [--block 64] [--channels 1] [--rate 48000] [--mode inline|decoupled|auto]
//                [--offline] [--pace] [--budget-ms X] [--pool-threads N] [--timings FILE]
//                [--rt-priority P] [--instances N] [--resample fastest|medium|best]
//
// Samples are interleaved when --channels > 1. --pace sleeps a block period after
// each block, as a real-time host would (a block that ends after its period
// starts the next period at once, counted as host_late_blocks). --timings writes
// per-block process() times and the worker's inference times (seconds, one a
// line, "block" / "worker" first).
// --rt-priority runs the streaming ("audio") thread SCHED_FIFO at P, as a host's
// audio thread runs (the pool's workers run below it). --instances runs N models
// one after the other every block, as a host runs a chain of plugins (the output
// file is the first one's; the counters add up, cpu_seconds is the process's).
// --resample streams a model whose description has another sample_rate than --rate
// through elkrt::ResamplingModel (one instance).
#include "elkrt/engine.h"
#include "elkrt/inference_pool.h"
#include "elkrt/streaming_model.h"
#if ELKRT_STREAM_RESAMPLING
#include "elkrt/resampling_model.h"
#endif

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace
{

int usage (const std::string& message)
{
    std::fprintf (stderr, "elkrt_stream: %s\n", message.c_str());
    return 2;
}

bool readFloats (const std::string& path, std::vector<float>& samples)
{
    std::ifstream file (path, std::ios::binary | std::ios::ate);
    if (! file)
        return false;
    const auto bytes = static_cast<std::size_t> (file.tellg());
    samples.resize (bytes / sizeof (float));
    file.seekg (0);
    file.read (reinterpret_cast<char*> (samples.data()), static_cast<std::streamsize> (samples.size() * sizeof (float)));
    return static_cast<bool> (file);
}

} // namespace

int main (int argc, char** argv)
{
    std::string engineName = "onnx", modelPath, rolesPath, inputPath, outputPath, timingsPath, mode = "auto", resample;
    int block = 64, channels = 1, poolThreads = 1, audioPriority = 0, instances = 1;
    double rate = 48000.0, budgetMs = 0.0;
    bool offline = false, pace = false;
    for (int i = 1; i < argc; ++i)
    {
        const std::string option = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc)
            {
                std::fprintf (stderr, "elkrt_stream: %s needs a value\n", option.c_str());
                std::exit (2);
            }
            return argv[++i];
        };
        if (option == "--engine") engineName = value();
        else if (option == "--model") modelPath = value();
        else if (option == "--roles") rolesPath = value();
        else if (option == "--input") inputPath = value();
        else if (option == "--output") outputPath = value();
        else if (option == "--timings") timingsPath = value();
        else if (option == "--mode") mode = value();
        else if (option == "--block") block = std::atoi (value().c_str());
        else if (option == "--channels") channels = std::atoi (value().c_str());
        else if (option == "--rate") rate = std::atof (value().c_str());
        else if (option == "--budget-ms") budgetMs = std::atof (value().c_str());
        else if (option == "--pool-threads") poolThreads = std::atoi (value().c_str());
        else if (option == "--rt-priority") audioPriority = std::atoi (value().c_str());
        else if (option == "--instances") instances = std::atoi (value().c_str());
        else if (option == "--resample") resample = value();
        else if (option == "--offline") offline = true;
        else if (option == "--pace") pace = true;
        else return usage ("unknown option " + option);
    }
    if (modelPath.empty() || rolesPath.empty() || inputPath.empty() || outputPath.empty())
        return usage ("--model, --roles, --input and --output are required");
    if (block < 1 || channels < 1 || instances < 1)
        return usage ("--block, --channels and --instances must be at least 1");
#if ELKRT_STREAM_RESAMPLING
    elkrt::ResampleQuality quality = elkrt::ResampleQuality::Medium;
    if (! resample.empty() && (instances != 1 || ! elkrt::parseResampleQuality (resample, quality)))
        return usage ("--resample takes fastest, medium or best, with one instance");
    std::unique_ptr<elkrt::ResamplingModel> resampler;
#else
    if (! resample.empty())
        return usage ("--resample: this elkrt_stream was built without libsamplerate");
#endif

    elkrt::ModelDescription description;
    std::string error;
    if (! elkrt::ModelDescription::load (rolesPath, description, error))
        return usage (error);
    elkrt::PoolOptions poolOptions;
    poolOptions.threads = poolThreads;
    elkrt::configureSharedPool (poolOptions);

    elkrt::StreamingConfig config;
    config.hostChannels = channels;
    config.maxHostBlock = block;
    config.hostSampleRate = rate;
    config.inferenceBudgetSeconds = budgetMs / 1000.0;
    config.mode = mode == "inline" ? elkrt::ExecutionMode::Inline
                : mode == "decoupled" ? elkrt::ExecutionMode::Decoupled
                                      : elkrt::ExecutionMode::Automatic;
    config.timingCapacity = timingsPath.empty() ? 0 : 1u << 20;
    std::vector<std::unique_ptr<elkrt::StreamingModel>> models;
    std::vector<elkrt::StreamingModel*> running; // every instance, a resampler's model too
    for (int i = 0; i < instances; ++i)
    {
        auto engine = elkrt::makeEngine (engineName);
        if (engine == nullptr)
            return usage ("engine " + engineName + " is not built into this elkrt");
        if (! engine->load (modelPath, description.shapeOverrides(), error))
            return usage (error);
        models.push_back (std::make_unique<elkrt::StreamingModel> (std::move (engine), description));
#if ELKRT_STREAM_RESAMPLING
        if (! resample.empty())
        {
            // The wrapper owns the model; `running` keeps a view of it for the counters.
            resampler = std::make_unique<elkrt::ResamplingModel> (std::move (models.back()), quality);
            models.pop_back();
            running.push_back (&resampler->model());
            if (! resampler->prepare (config, error))
                return usage (error);
            resampler->setOffline (offline);
            continue;
        }
#endif
        running.push_back (models.back().get());
        if (! models.back()->prepare (config, error))
            return usage (error);
        models.back()->setOffline (offline);
    }
    elkrt::StreamingModel& model = *running.front();

    std::vector<float> input;
    if (! readFloats (inputPath, input))
        return usage ("cannot read " + inputPath);
    const std::size_t frames = input.size() / static_cast<std::size_t> (channels);
    std::vector<float> output (frames * static_cast<std::size_t> (channels), 0.0f);
    std::vector<std::vector<float>> planarIn (static_cast<std::size_t> (channels), std::vector<float> (static_cast<std::size_t> (block)));
    std::vector<std::vector<float>> planarOut = planarIn, spareOut = planarIn;
    std::vector<const float*> in (static_cast<std::size_t> (channels));
    std::vector<float*> out (static_cast<std::size_t> (channels)), spare (static_cast<std::size_t> (channels));
    for (int c = 0; c < channels; ++c)
    {
        in[static_cast<std::size_t> (c)] = planarIn[static_cast<std::size_t> (c)].data();
        out[static_cast<std::size_t> (c)] = planarOut[static_cast<std::size_t> (c)].data();
        spare[static_cast<std::size_t> (c)] = spareOut[static_cast<std::size_t> (c)].data();
    }
    bool audioRealtime = false;
    if (audioPriority > 0)
    {
        sched_param parameters {};
        parameters.sched_priority = audioPriority;
        audioRealtime = pthread_setschedparam (pthread_self(), SCHED_FIFO, &parameters) == 0;
    }
    std::vector<double> blockSeconds;
    blockSeconds.reserve (frames / static_cast<std::size_t> (block) + 1);

    const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration> (std::chrono::duration<double> (block / rate));
    auto due = std::chrono::steady_clock::now();
    long hostLate = 0;
    const auto started = std::chrono::steady_clock::now();
    rusage usageBefore {};
    getrusage (RUSAGE_SELF, &usageBefore);
    for (std::size_t start = 0; start < frames; start += static_cast<std::size_t> (block))
    {
        const auto count = std::min<std::size_t> (static_cast<std::size_t> (block), frames - start);
        for (std::size_t i = 0; i < count; ++i)
            for (std::size_t c = 0; c < static_cast<std::size_t> (channels); ++c)
                planarIn[c][i] = input[(start + i) * static_cast<std::size_t> (channels) + c];
        const auto begin = std::chrono::steady_clock::now();
#if ELKRT_STREAM_RESAMPLING
        if (resampler != nullptr)
            resampler->process (in.data(), out.data(), static_cast<int> (count));
        else
#endif
            model.process (in.data(), out.data(), static_cast<int> (count));
        for (std::size_t i = 1; i < running.size(); ++i)
            running[i]->process (in.data(), spare.data(), static_cast<int> (count));
        blockSeconds.push_back (std::chrono::duration<double> (std::chrono::steady_clock::now() - begin).count());
        for (std::size_t i = 0; i < count; ++i)
            for (std::size_t c = 0; c < static_cast<std::size_t> (channels); ++c)
                output[(start + i) * static_cast<std::size_t> (channels) + c] = planarOut[c][i];
        if (pace)
        {
            // Like an audio driver: a block period that was missed is gone, the next
            // block comes at the next period, never in a burst to catch up.
            due += period;
            const auto now = std::chrono::steady_clock::now();
            if (now > due)
            {
                ++hostLate;
                due = now;
            }
            std::this_thread::sleep_until (due);
        }
    }
    const double seconds = std::chrono::duration<double> (std::chrono::steady_clock::now() - started).count();
    rusage usageAfter {};
    getrusage (RUSAGE_SELF, &usageAfter);
    auto cpuOf = [] (const rusage& usage) {
        return static_cast<double> (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
             + 1e-6 * static_cast<double> (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
    };
    const double cpuSeconds = cpuOf (usageAfter) - cpuOf (usageBefore);

    std::ofstream file (outputPath, std::ios::binary);
    file.write (reinterpret_cast<const char*> (output.data()), static_cast<std::streamsize> (output.size() * sizeof (float)));
    if (! file)
        return usage ("cannot write " + outputPath);
    if (! timingsPath.empty())
    {
        std::ofstream timings (timingsPath);
        for (double value : blockSeconds)
            timings << "block " << value << "\n";
        for (double value : model.inferenceTimes())
            timings << "worker " << value << "\n";
    }
    elkrt::StreamingStats stats;
    for (const auto* each : running)
    {
        const auto counted = each->stats();
        stats.framesRun += counted.framesRun;
        stats.failedRuns += counted.failedRuns;
        stats.underrunSamples += counted.underrunSamples;
        stats.overrunSamples += counted.overrunSamples;
    }
    stats.measuredInferenceSeconds = model.stats().measuredInferenceSeconds;
    int latency = model.latencySamples(), converterDelay = 0;
    unsigned long long converterUnderruns = 0;
#if ELKRT_STREAM_RESAMPLING
    if (resampler != nullptr)
    {
        latency = resampler->latencySamples();
        converterDelay = resampler->converterDelaySamples();
        converterUnderruns = resampler->underrunSamples();
    }
#endif
    std::printf ("{\"latency\": %d, \"model_latency\": %d, \"converter_delay\": %d, "
                 "\"converter_underruns\": %llu, \"frame\": %d, \"context\": %d, \"decoupled\": %s, \"engine\": \"%s\", "
                 "\"frames_run\": %llu, \"failed_runs\": %llu, \"underruns\": %llu, \"overruns\": %llu, "
                 "\"measured_inference_s\": %.9f, \"seconds\": %.6f, \"audio_realtime\": %s, "
                 "\"pool_realtime_workers\": %d, \"host_late_blocks\": %ld, \"instances\": %d, "
                 "\"pool_threads\": %d, \"cpu_seconds\": %.6f}\n",
                 latency, model.latencySamples(), converterDelay, converterUnderruns, model.modelFrame(), model.pastContext(), model.decoupled() ? "true" : "false",
                 model.engine().name(), static_cast<unsigned long long> (stats.framesRun),
                 static_cast<unsigned long long> (stats.failedRuns), static_cast<unsigned long long> (stats.underrunSamples),
                 static_cast<unsigned long long> (stats.overrunSamples), stats.measuredInferenceSeconds, seconds,
                 audioRealtime ? "true" : "false", elkrt::sharedPool().realtimeWorkers(), hostLate,
                 instances, elkrt::sharedPool().threadCount(), cpuSeconds);
    return stats.failedRuns == 0 ? 0 : 1;
}
