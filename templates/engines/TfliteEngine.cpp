// TensorFlow Lite behind the InferenceEngine interface.
#include "InferenceEngine.h"

#include <tensorflow/lite/interpreter.h>
#include <tensorflow/lite/kernels/register.h>
#include <tensorflow/lite/model.h>

#include <cstring>

namespace elkbuild
{
namespace
{

class TfliteEngine final : public InferenceEngine
{
public:
    ~TfliteEngine() override { destroy(); }

    bool create (const std::string& modelPath, std::size_t inputElements,
                 std::size_t outputElements, std::string& error) override
    {
        destroy();
        model = tflite::FlatBufferModel::BuildFromFile (modelPath.c_str());
        if (model == nullptr)
        {
            error = modelPath + ": not a loadable TFLite model";
            return false;
        }
        tflite::ops::builtin::BuiltinOpResolver resolver;
        if (tflite::InterpreterBuilder (*model, resolver) (&interpreter) != kTfLiteOk || interpreter == nullptr)
        {
            error = modelPath + ": TFLite could not build an interpreter (unsupported operator?)";
            destroy();
            return false;
        }
        // One thread: the caller is the only thread that should run (see OnnxEngine).
        interpreter->SetNumThreads (1);
        if (interpreter->AllocateTensors() != kTfLiteOk)
        {
            error = modelPath + ": TFLite could not allocate the model's tensors";
            destroy();
            return false;
        }
        if (interpreter->inputs().size() != 1 || interpreter->outputs().size() != 1
            || interpreter->input_tensor (0)->type != kTfLiteFloat32
            || interpreter->output_tensor (0)->type != kTfLiteFloat32
            || interpreter->input_tensor (0)->bytes != inputElements * sizeof (float)
            || interpreter->output_tensor (0)->bytes != outputElements * sizeof (float))
        {
            error = modelPath + ": tensors differ from the ones the plugin was rendered for;"
                                " run `invoke new-plugin --force` with this model";
            destroy();
            return false;
        }
        inputBytes = inputElements * sizeof (float);
        outputBytes = outputElements * sizeof (float);
        std::memset (interpreter->typed_input_tensor<float> (0), 0, inputBytes);
        // Priming run: kernels prepare their scratch buffers on the first invoke.
        if (interpreter->Invoke() != kTfLiteOk)
        {
            error = modelPath + ": the priming inference failed";
            destroy();
            return false;
        }
        return true;
    }

    bool run (const float* input, float* output) noexcept override
    {
        if (interpreter == nullptr)
            return false;
        std::memcpy (interpreter->typed_input_tensor<float> (0), input, inputBytes);
        if (interpreter->Invoke() != kTfLiteOk)
            return false;
        std::memcpy (output, interpreter->typed_output_tensor<float> (0), outputBytes);
        return true;
    }

    void destroy() noexcept override
    {
        interpreter.reset();
        model.reset();
    }

    const char* engineName() const noexcept override { return "tensorflow-lite"; }

private:
    std::unique_ptr<tflite::FlatBufferModel> model;
    std::unique_ptr<tflite::Interpreter> interpreter;
    std::size_t inputBytes = 0, outputBytes = 0;
};

} // namespace

std::unique_ptr<InferenceEngine> makeEngine() { return std::make_unique<TfliteEngine>(); }

} // namespace elkbuild
