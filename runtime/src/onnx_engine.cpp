// ONNX Runtime behind elkrt::Engine: every input and output is an Ort::Value over
// a TensorBuffer allocated in load(), so run() creates no tensor.
#include "elkrt/engine.h"

#include <onnxruntime_cxx_api.h>

#include <mutex>

namespace elkrt
{
namespace
{

bool toDType (ONNXTensorElementDataType type, DType& result)
{
    switch (type)
    {
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: result = DType::Float32; return true;
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: result = DType::Int32; return true;
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: result = DType::Int64; return true;
        default: return false;
    }
}

ONNXTensorElementDataType toOnnx (DType type)
{
    switch (type)
    {
        case DType::Float32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
        case DType::Int32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
        case DType::Int64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    }
    return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
}

bool hasDynamic (const std::vector<int64_t>& shape)
{
    for (auto dimension : shape)
        if (dimension < 1)
            return true;
    return false;
}

// One environment per process: ORT allows several, but each owns logging and
// (unless disabled) thread pools.
Ort::Env& environment()
{
    static Ort::Env env (ORT_LOGGING_LEVEL_WARNING, "elkrt");
    return env;
}

class OnnxEngine final : public Engine
{
public:
    bool load (const std::string& modelPath, const ShapeOverrides& shapes, std::string& error) override
    {
        fail();
        try
        {
            Ort::SessionOptions options;
            // The calling thread (audio thread or pool worker) is the only one that runs:
            // ORT's own threads would compete with real-time threads, and spinning ones
            // would burn the cores the audio thread needs.
            options.SetIntraOpNumThreads (1);
            options.SetInterOpNumThreads (1);
            options.SetExecutionMode (ORT_SEQUENTIAL);
            options.SetGraphOptimizationLevel (GraphOptimizationLevel::ORT_ENABLE_ALL);
            options.AddConfigEntry ("session.intra_op.allow_spinning", "0");
            options.AddConfigEntry ("session.inter_op.allow_spinning", "0");
            session = std::make_unique<Ort::Session> (environment(), modelPath.c_str(), options);

            Ort::AllocatorWithDefaultOptions allocator;
            bool outputsDynamic = false;
            for (int side = 0; side < 2; ++side)
            {
                const bool isInput = side == 0;
                const std::size_t count = isInput ? session->GetInputCount() : session->GetOutputCount();
                for (std::size_t i = 0; i < count; ++i)
                {
                    TensorSpec spec;
                    spec.name = isInput ? session->GetInputNameAllocated (i, allocator).get()
                                        : session->GetOutputNameAllocated (i, allocator).get();
                    auto info = (isInput ? session->GetInputTypeInfo (i) : session->GetOutputTypeInfo (i));
                    if (info.GetONNXType() != ONNX_TYPE_TENSOR)
                    {
                        error = modelPath + ": " + (isInput ? "input '" : "output '") + spec.name + "' is not a tensor";
                        return fail();
                    }
                    auto tensorInfo = info.GetTensorTypeAndShapeInfo();
                    if (! toDType (tensorInfo.GetElementType(), spec.type))
                    {
                        error = modelPath + ": " + (isInput ? "input '" : "output '") + spec.name
                              + "' has an element type other than float32, int32 or int64";
                        return fail();
                    }
                    spec.shape = tensorInfo.GetShape();
                    if (! fixShape (spec, shapes, isInput, error))
                    {
                        error = modelPath + ": " + error;
                        return fail();
                    }
                    if (! isInput && hasDynamic (spec.shape))
                        outputsDynamic = true;
                    (isInput ? inputs : outputs).emplace_back (spec);
                }
            }
            memory = std::make_unique<Ort::MemoryInfo> (Ort::MemoryInfo::CreateCpu (OrtDeviceAllocator, OrtMemTypeCPU));
            runOptions = std::make_unique<Ort::RunOptions>();
            inputNames.clear();
            outputNames.clear();
            inputValues.clear();
            outputValues.clear();
            for (auto& slot : inputs)
            {
                inputValues.push_back (slot.bind (*memory));
                inputNames.push_back (slot.buffer.spec().name.c_str());
            }
            if (outputsDynamic)
                learnOutputShapes();
            for (auto& slot : outputs)
            {
                outputValues.push_back (slot.bind (*memory));
                outputNames.push_back (slot.buffer.spec().name.c_str());
            }
            // Priming: ORT allocates its arena and kernels' scratch on the first run.
            session->Run (*runOptions, inputNames.data(), inputValues.data(), inputValues.size(),
                          outputNames.data(), outputValues.data(), outputValues.size());
        }
        catch (const Ort::Exception& e)
        {
            error = modelPath + ": " + e.what();
            return fail();
        }
        return true;
    }

    std::size_t inputCount() const noexcept override { return inputs.size(); }
    std::size_t outputCount() const noexcept override { return outputs.size(); }
    TensorBuffer& input (std::size_t index) noexcept override { return inputs[index].buffer; }
    const TensorBuffer& output (std::size_t index) const noexcept override { return outputs[index].buffer; }

    bool run() noexcept override
    {
        if (session == nullptr)
            return false;
        try
        {
            session->Run (*runOptions, inputNames.data(), inputValues.data(), inputValues.size(),
                          outputNames.data(), outputValues.data(), outputValues.size());
        }
        catch (...)
        {
            return false;
        }
        return true;
    }

    // ORT allocates inside every Run (its own bookkeeping, ~60 new/delete measured).
    bool realtimeSafe() const noexcept override { return false; }
    const char* name() const noexcept override { return "onnxruntime"; }

private:
    struct Slot
    {
        explicit Slot (TensorSpec spec) : pending (std::move (spec)) {}
        // The buffer is allocated once; the value views it for the engine's lifetime.
        Ort::Value bind (const Ort::MemoryInfo& memory)
        {
            buffer.allocate (pending);
            return Ort::Value::CreateTensor (memory, buffer.data(), buffer.byteCount(), buffer.spec().shape.data(),
                                             buffer.spec().shape.size(), toOnnx (buffer.spec().type));
        }
        TensorSpec pending;
        TensorBuffer buffer;
    };

    static bool fixShape (TensorSpec& spec, const ShapeOverrides& shapes, bool isInput, std::string& error)
    {
        const auto given = shapes.find (spec.name);
        if (given != shapes.end())
        {
            bool fits = given->second.size() == spec.shape.size();
            for (std::size_t axis = 0; fits && axis < spec.shape.size(); ++axis)
                fits = spec.shape[axis] < 1 || spec.shape[axis] == given->second[axis];
            if (! fits)
            {
                error = std::string (isInput ? "input '" : "output '") + spec.name + "' has shape "
                      + spec.shapeText() + "; the description's shape does not fit it";
                return false;
            }
            spec.shape = given->second;
        }
        if (isInput && hasDynamic (spec.shape))
        {
            error = "input '" + spec.name + "' has a dynamic dimension " + spec.shapeText()
                  + "; give its shape in the description (shape=...)";
            return false;
        }
        return true;
    }

    // Output shapes that depend on input shapes: one run with ORT's own outputs tells them.
    void learnOutputShapes()
    {
        std::vector<const char*> outNames;
        for (auto& slot : outputs)
            outNames.push_back (slot.pending.name.c_str());
        auto results = session->Run (*runOptions, inputNames.data(), inputValues.data(), inputValues.size(),
                                     outNames.data(), outNames.size());
        for (std::size_t i = 0; i < outputs.size(); ++i)
            outputs[i].pending.shape = results[i].GetTensorTypeAndShapeInfo().GetShape();
    }

    bool fail()
    {
        inputValues.clear();
        outputValues.clear();
        inputs.clear();
        outputs.clear();
        session.reset();
        return false;
    }

    std::unique_ptr<Ort::Session> session;
    std::unique_ptr<Ort::MemoryInfo> memory;
    std::unique_ptr<Ort::RunOptions> runOptions;
    std::vector<Slot> inputs, outputs;
    std::vector<const char*> inputNames, outputNames;
    // Views of the slots' buffers, in the layout Run() takes.
    std::vector<Ort::Value> inputValues, outputValues;
};

} // namespace

std::unique_ptr<Engine> makeOnnxEngine() { return std::make_unique<OnnxEngine>(); }

} // namespace elkrt
