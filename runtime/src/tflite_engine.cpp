// TensorFlow Lite (LiteRT) behind elkrt::Engine through its C API, which is stable
// across versions and exported by LiteRT's portable runtime library. Tensors by
// index; inputs and outputs are copied between the interpreter and TensorBuffers.
#include "elkrt/engine.h"

#include <tensorflow/lite/c/c_api.h>

namespace elkrt
{
namespace
{

bool toDType (TfLiteType type, DType& result)
{
    switch (type)
    {
        case kTfLiteFloat32: result = DType::Float32; return true;
        case kTfLiteInt32: result = DType::Int32; return true;
        case kTfLiteInt64: result = DType::Int64; return true;
        default: return false;
    }
}

TensorSpec specOf (const TfLiteTensor* tensor)
{
    TensorSpec spec;
    spec.name = TfLiteTensorName (tensor) != nullptr ? TfLiteTensorName (tensor) : "";
    for (int axis = 0; axis < TfLiteTensorNumDims (tensor); ++axis)
        spec.shape.push_back (TfLiteTensorDim (tensor, axis));
    return spec;
}

class TfliteEngine final : public Engine
{
public:
    ~TfliteEngine() override { release(); }

    bool load (const std::string& modelPath, const ShapeOverrides& shapes, std::string& error) override
    {
        release();
        model = TfLiteModelCreateFromFile (modelPath.c_str());
        if (model == nullptr)
            return fail (error, modelPath + ": not a loadable TFLite model");
        options = TfLiteInterpreterOptionsCreate();
        // One thread: the caller (audio thread or pool worker) is the only one that runs.
        TfLiteInterpreterOptionsSetNumThreads (options, 1);
        interpreter = TfLiteInterpreterCreate (model, options);
        if (interpreter == nullptr)
            return fail (error, modelPath + ": TFLite could not build an interpreter (unsupported operator?)");

        const int inputTotal = TfLiteInterpreterGetInputTensorCount (interpreter);
        for (int i = 0; i < inputTotal; ++i)
        {
            const TensorSpec spec = specOf (TfLiteInterpreterGetInputTensor (interpreter, i));
            const auto given = shapes.find (spec.name);
            if (given != shapes.end() && given->second != spec.shape)
            {
                if (given->second.size() != spec.shape.size())
                    return fail (error, modelPath + ": input '" + spec.name + "' has shape " + spec.shapeText()
                                            + "; the description's shape does not fit it");
                std::vector<int> dims (given->second.begin(), given->second.end());
                if (TfLiteInterpreterResizeInputTensor (interpreter, i, dims.data(), static_cast<int32_t> (dims.size())) != kTfLiteOk)
                    return fail (error, modelPath + ": input '" + spec.name + "' cannot take the description's shape");
            }
        }
        if (TfLiteInterpreterAllocateTensors (interpreter) != kTfLiteOk)
            return fail (error, modelPath + ": TFLite could not allocate the model's tensors");

        for (int side = 0; side < 2; ++side)
        {
            const bool isInput = side == 0;
            const int count = isInput ? inputTotal : TfLiteInterpreterGetOutputTensorCount (interpreter);
            for (int i = 0; i < count; ++i)
            {
                const TfLiteTensor* tensor = isInput ? TfLiteInterpreterGetInputTensor (interpreter, i)
                                                     : TfLiteInterpreterGetOutputTensor (interpreter, i);
                TensorSpec spec = specOf (tensor);
                if (! toDType (TfLiteTensorType (tensor), spec.type))
                    return fail (error, modelPath + ": " + (isInput ? "input '" : "output '") + spec.name
                                            + "' has an element type other than float32, int32 or int64");
                (isInput ? inputs : outputs).emplace_back (spec);
                if ((isInput ? inputs : outputs).back().byteCount() != TfLiteTensorByteSize (tensor))
                    return fail (error, modelPath + ": tensor '" + spec.name + "' has an unexpected byte size");
            }
        }
        // Priming run: kernels prepare their scratch on the first invoke.
        if (! run())
            return fail (error, modelPath + ": the priming inference failed");
        return true;
    }

    std::size_t inputCount() const noexcept override { return inputs.size(); }
    std::size_t outputCount() const noexcept override { return outputs.size(); }
    TensorBuffer& input (std::size_t index) noexcept override { return inputs[index]; }
    const TensorBuffer& output (std::size_t index) const noexcept override { return outputs[index]; }

    bool run() noexcept override
    {
        if (interpreter == nullptr)
            return false;
        for (std::size_t i = 0; i < inputs.size(); ++i)
            if (TfLiteTensorCopyFromBuffer (TfLiteInterpreterGetInputTensor (interpreter, static_cast<int32_t> (i)),
                                            inputs[i].data(), inputs[i].byteCount()) != kTfLiteOk)
                return false;
        if (TfLiteInterpreterInvoke (interpreter) != kTfLiteOk)
            return false;
        for (std::size_t i = 0; i < outputs.size(); ++i)
            if (TfLiteTensorCopyToBuffer (TfLiteInterpreterGetOutputTensor (interpreter, static_cast<int32_t> (i)),
                                          outputs[i].data(), outputs[i].byteCount()) != kTfLiteOk)
                return false;
        return true;
    }

    // Builtin kernels do not allocate once tensors are allocated and primed
    // (Stefani et al., DAFx 2022, on a Pi 4 under Elk).
    bool realtimeSafe() const noexcept override { return true; }
    const char* name() const noexcept override { return "tensorflow-lite"; }

private:
    bool fail (std::string& error, std::string message)
    {
        error = std::move (message);
        release();
        return false;
    }

    void release() noexcept
    {
        inputs.clear();
        outputs.clear();
        if (interpreter != nullptr)
            TfLiteInterpreterDelete (interpreter);
        if (options != nullptr)
            TfLiteInterpreterOptionsDelete (options);
        if (model != nullptr)
            TfLiteModelDelete (model);
        interpreter = nullptr;
        options = nullptr;
        model = nullptr;
    }

    TfLiteModel* model = nullptr;
    TfLiteInterpreterOptions* options = nullptr;
    TfLiteInterpreter* interpreter = nullptr;
    std::vector<TensorBuffer> inputs, outputs;
};

} // namespace

std::unique_ptr<Engine> makeTfliteEngine() { return std::make_unique<TfliteEngine>(); }

} // namespace elkrt
