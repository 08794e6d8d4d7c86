// A plugin-like shared object for the pool-sharing tests and bench: links libelkrt
// statically and libelkrt_pool.so.1 dynamically, as an elkbuild plugin does, and
// runs N decoupled models (a fake identity engine, or an ONNX model) on sharedPool().
#include "fake_engine.h"

#include "elkrt/engine.h"
#include "elkrt/inference_pool.h"
#include "elkrt/streaming_model.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace
{

std::vector<std::unique_ptr<elkrt::StreamingModel>> models;
std::vector<std::vector<float>> buffers;

std::unique_ptr<elkrt::StreamingModel> makeModel (const char* modelPath, const char* rolesPath, std::string& error)
{
    elkrt::ModelDescription description;
    std::unique_ptr<elkrt::Engine> engine;
    if (modelPath == nullptr)
    {
        using namespace elkrt_test;
        engine = std::make_unique<FakeEngine> (std::vector<elkrt::TensorSpec> { floats ("x", { 1, 64 }) },
                                               std::vector<elkrt::TensorSpec> { floats ("y", { 1, 64 }) },
                                               [] (FakeEngine& e) {
                                                   std::memcpy (e.out (0), e.in (0), 64 * sizeof (float));
                                                   return true;
                                               });
        description.tensors = { audio ("x", true, 1), audio ("y", false, 1) };
    }
    else
    {
        engine = elkrt::makeEngine ("onnx");
        if (engine == nullptr || ! elkrt::ModelDescription::load (rolesPath, description, error)
            || ! engine->load (modelPath, description.shapeOverrides(), error))
            return nullptr;
    }
    return std::make_unique<elkrt::StreamingModel> (std::move (engine), description);
}

} // namespace

extern "C" __attribute__ ((visibility ("default"))) int plugin_open (const char* modelPath, const char* rolesPath, int instances,
                                                                   int block, double budgetSeconds, int offline)
{
    for (int i = 0; i < instances; ++i)
    {
        std::string error;
        auto model = makeModel (modelPath, rolesPath, error);
        elkrt::StreamingConfig config;
        config.maxHostBlock = block;
        config.mode = elkrt::ExecutionMode::Decoupled;
        config.inferenceBudgetSeconds = budgetSeconds;
        config.measureRuns = 1;
        if (model == nullptr || ! model->prepare (config, error))
        {
            std::fprintf (stderr, "%s: %s\n", ELKRT_TEST_PLUGIN, error.c_str());
            return 0;
        }
        model->setOffline (offline != 0);
        models.push_back (std::move (model));
        buffers.emplace_back (static_cast<std::size_t> (block), 0.0f);
    }
    return 1;
}

// One host block for every instance: `input` in, the last instance's output out.
extern "C" __attribute__ ((visibility ("default"))) void plugin_process (const float* input, float* output, int samples)
{
    for (std::size_t i = 0; i < models.size(); ++i)
    {
        std::memcpy (buffers[i].data(), input, static_cast<std::size_t> (samples) * sizeof (float));
        float* channel[1] = { buffers[i].data() };
        models[i]->process (channel, channel, samples);
    }
    if (! buffers.empty())
        std::memcpy (output, buffers.back().data(), static_cast<std::size_t> (samples) * sizeof (float));
}

extern "C" __attribute__ ((visibility ("default"))) int plugin_latency()
{
    return models.empty() ? 0 : models.front()->latencySamples();
}

// The pool this plugin's models run on, as JSON.
extern "C" __attribute__ ((visibility ("default"))) void plugin_pool (char* json, int size)
{
    auto& pool = elkrt::sharedPool();
    const auto status = elkrt::sharedPoolStatus();
    unsigned long long underruns = 0;
    for (const auto& model : models)
        underruns += model->stats().underrunSamples;
    std::snprintf (json, static_cast<std::size_t> (size),
                   "{\"plugin\": \"%s\", \"pool\": \"%llx\", \"threads\": %d, \"process_wide\": %s, \"reason\": \"%s\", "
                   "\"underruns\": %llu}",
                   ELKRT_TEST_PLUGIN, static_cast<unsigned long long> (pool.identity()), pool.threadCount(),
                   status.processWide ? "true" : "false", status.reason.c_str(), underruns);
}

extern "C" __attribute__ ((visibility ("default"))) void plugin_close()
{
    models.clear();
    buffers.clear();
}
