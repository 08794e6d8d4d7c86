// Loads a model through libelkrt as a plugin would: engine, description, prepare,
// then one block; prints the latency and the first output sample.
#include <elkrt/engine.h>
#include <elkrt/streaming_model.h>

#include <cstdio>
#include <vector>

int main (int argc, char** argv)
{
    if (argc != 3)
        return 2;
    elkrt::ModelDescription description;
    std::string error;
    auto engine = elkrt::makeEngine ("onnx");
    if (engine == nullptr || ! elkrt::ModelDescription::load (argv[2], description, error)
        || ! engine->load (argv[1], description.shapeOverrides(), error))
    {
        std::fprintf (stderr, "%s\n", error.c_str());
        return 1;
    }
    elkrt::StreamingModel model (std::move (engine), description);
    elkrt::StreamingConfig config;
    config.mode = elkrt::ExecutionMode::Inline;
    if (! model.prepare (config, error))
    {
        std::fprintf (stderr, "%s\n", error.c_str());
        return 1;
    }
    std::vector<float> block (64, 0.25f);
    float* channels[1] = { block.data() };
    model.process (channels, channels, 64);
    std::printf ("latency %d first %.6f\n", model.latencySamples(), block[0]);
    return 0;
}
