// ONNX Runtime behind the InferenceEngine interface.
#include "InferenceEngine.h"

#include <onnxruntime_cxx_api.h>

#include <cstring>
#include <vector>

namespace elkbuild
{
namespace
{

std::vector<int64_t> fixedShape (std::vector<int64_t> shape)
{
    // A dynamic dimension (-1) is the batch: the plugin always runs one at a time.
    for (auto& dim : shape)
        if (dim < 0)
            dim = 1;
    return shape;
}

std::size_t elementCount (const std::vector<int64_t>& shape)
{
    std::size_t count = 1;
    for (auto dim : shape)
        count *= static_cast<std::size_t> (dim);
    return count;
}

class OnnxEngine final : public InferenceEngine
{
public:
    ~OnnxEngine() override { destroy(); }

    bool create (const std::string& modelPath, std::size_t inputElements,
                 std::size_t outputElements, std::string& error) override
    {
        destroy();
        try
        {
            env = std::make_unique<Ort::Env> (ORT_LOGGING_LEVEL_WARNING, "elkbuild");
            Ort::SessionOptions options;
            // The caller (audio thread or inference worker) is the only thread that
            // should run: ORT's own thread pools would compete with real-time threads.
            options.SetIntraOpNumThreads (1);
            options.SetInterOpNumThreads (1);
            options.SetExecutionMode (ORT_SEQUENTIAL);
            options.SetGraphOptimizationLevel (GraphOptimizationLevel::ORT_ENABLE_ALL);
            session = std::make_unique<Ort::Session> (*env, modelPath.c_str(), options);

            if (session->GetInputCount() != 1 || session->GetOutputCount() != 1)
            {
                error = modelPath + ": the plugin expects exactly one input and one output";
                destroy();
                return false;
            }
            Ort::AllocatorWithDefaultOptions allocator;
            inputName = session->GetInputNameAllocated (0, allocator).get();
            outputName = session->GetOutputNameAllocated (0, allocator).get();
            inputShape = fixedShape (session->GetInputTypeInfo (0).GetTensorTypeAndShapeInfo().GetShape());
            outputShape = fixedShape (session->GetOutputTypeInfo (0).GetTensorTypeAndShapeInfo().GetShape());
            if (elementCount (inputShape) != inputElements || elementCount (outputShape) != outputElements)
            {
                error = modelPath + ": tensor sizes differ from the ones the plugin was rendered for;"
                                    " run `invoke new-plugin --force` with this model";
                destroy();
                return false;
            }

            inputBuffer.assign (inputElements, 0.0f);
            outputBuffer.assign (outputElements, 0.0f);
            auto memory = Ort::MemoryInfo::CreateCpu (OrtArenaAllocator, OrtMemTypeDefault);
            // Tensors wrap buffers owned here, so run() never allocates a tensor.
            inputTensor = Ort::Value::CreateTensor<float> (memory, inputBuffer.data(), inputBuffer.size(),
                                                           inputShape.data(), inputShape.size());
            outputTensor = Ort::Value::CreateTensor<float> (memory, outputBuffer.data(), outputBuffer.size(),
                                                            outputShape.data(), outputShape.size());
            runOptions = std::make_unique<Ort::RunOptions>();
            inputNames[0] = inputName.c_str();
            outputNames[0] = outputName.c_str();
            // Priming: ORT allocates its arena and kernels' scratch on the first run.
            session->Run (*runOptions, inputNames, &inputTensor, 1, outputNames, &outputTensor, 1);
        }
        catch (const Ort::Exception& e)
        {
            error = modelPath + ": " + e.what();
            destroy();
            return false;
        }
        return true;
    }

    bool run (const float* input, float* output) noexcept override
    {
        if (session == nullptr)
            return false;
        std::memcpy (inputBuffer.data(), input, inputBuffer.size() * sizeof (float));
        try
        {
            session->Run (*runOptions, inputNames, &inputTensor, 1, outputNames, &outputTensor, 1);
        }
        catch (...)
        {
            return false;
        }
        std::memcpy (output, outputBuffer.data(), outputBuffer.size() * sizeof (float));
        return true;
    }

    void destroy() noexcept override
    {
        inputTensor = Ort::Value { nullptr };
        outputTensor = Ort::Value { nullptr };
        runOptions.reset();
        session.reset();
        env.reset();
    }

    const char* engineName() const noexcept override { return "onnxruntime"; }

private:
    std::unique_ptr<Ort::Env> env;
    std::unique_ptr<Ort::Session> session;
    std::unique_ptr<Ort::RunOptions> runOptions;
    std::string inputName, outputName;
    const char* inputNames[1] {};
    const char* outputNames[1] {};
    std::vector<int64_t> inputShape, outputShape;
    std::vector<float> inputBuffer, outputBuffer;
    Ort::Value inputTensor { nullptr };
    Ort::Value outputTensor { nullptr };
};

} // namespace

std::unique_ptr<InferenceEngine> makeEngine() { return std::make_unique<OnnxEngine>(); }

} // namespace elkbuild
