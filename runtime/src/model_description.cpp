#include "elkrt/model_description.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace elkrt
{
namespace
{

bool parseInteger (const std::string& text, long long& value)
{
    char* end = nullptr;
    value = std::strtoll (text.c_str(), &end, 10);
    return ! text.empty() && end != nullptr && *end == '\0';
}

bool parseShape (const std::string& text, std::vector<int64_t>& shape)
{
    shape.clear();
    std::stringstream parts (text);
    std::string part;
    while (std::getline (parts, part, ','))
    {
        long long dimension = 0;
        if (! parseInteger (part, dimension) || dimension < 1)
            return false;
        shape.push_back (dimension);
    }
    return ! shape.empty();
}

} // namespace

ShapeOverrides ModelDescription::shapeOverrides() const
{
    ShapeOverrides overrides;
    for (const auto& tensor : tensors)
        if (! tensor.shape.empty())
            overrides[tensor.name] = tensor.shape;
    return overrides;
}

const TensorBinding* ModelDescription::find (const std::string& name, bool isInput) const noexcept
{
    for (const auto& tensor : tensors)
        if (tensor.name == name && tensor.isInput == isInput)
            return &tensor;
    return nullptr;
}

bool ModelDescription::parse (const std::string& text, ModelDescription& description, std::string& error)
{
    description = {};
    std::stringstream lines (text);
    std::string line;
    int lineNumber = 0;
    while (std::getline (lines, line))
    {
        ++lineNumber;
        const auto where = "line " + std::to_string (lineNumber) + ": ";
        if (const auto hash = line.find ('#'); hash != std::string::npos)
            line.erase (hash);
        std::stringstream words (line);
        std::string keyword;
        if (! (words >> keyword))
            continue;
        if (keyword == "sample_rate" || keyword == "model_latency")
        {
            std::string value;
            words >> value;
            char* end = nullptr;
            const double number = std::strtod (value.c_str(), &end);
            if (value.empty() || *end != '\0' || number < 0)
            {
                error = where + keyword + " needs a non-negative number";
                return false;
            }
            if (keyword == "sample_rate")
                description.sampleRate = number;
            else
                description.modelLatencySamples = static_cast<int> (number);
            continue;
        }
        if (keyword != "input" && keyword != "output")
        {
            error = where + "unknown keyword '" + keyword + "' (input, output, sample_rate, model_latency)";
            return false;
        }
        TensorBinding binding;
        binding.isInput = keyword == "input";
        std::string role;
        if (! (words >> binding.name >> role))
        {
            error = where + keyword + " needs a tensor name and a role";
            return false;
        }
        if (role == "audio")
            binding.role = binding.isInput ? TensorRole::AudioIn : TensorRole::AudioOut;
        else if (role == "state")
            binding.role = binding.isInput ? TensorRole::StateIn : TensorRole::StateOut;
        else if (role == "constant" && binding.isInput)
            binding.role = TensorRole::Constant;
        else if (role == "extra" && ! binding.isInput)
            binding.role = TensorRole::Extra;
        else
        {
            error = where + "tensor '" + binding.name + "': role '" + role + "' is not one of "
                  + (binding.isInput ? "audio, state, constant" : "audio, state, extra");
            return false;
        }
        std::string option;
        while (words >> option)
        {
            const auto equals = option.find ('=');
            const auto key = option.substr (0, equals);
            const auto value = equals == std::string::npos ? std::string() : option.substr (equals + 1);
            long long integer = 0;
            bool understood = true;
            if (key == "time" && parseInteger (value, integer))
                binding.timeAxis = static_cast<int> (integer);
            else if (key == "channel" && value == "none")
                binding.channelAxis = -1;
            else if (key == "channel" && parseInteger (value, integer))
                binding.channelAxis = static_cast<int> (integer);
            else if (key == "from" && ! value.empty())
                binding.stateFrom = value;
            else if (key == "value" && ! value.empty())
            {
                char* end = nullptr;
                binding.constantValue = std::strtod (value.c_str(), &end);
                understood = *end == '\0';
            }
            else if (key == "shape")
                understood = parseShape (value, binding.shape);
            else
                understood = false;
            if (! understood)
            {
                error = where + "tensor '" + binding.name + "': cannot read '" + option + "'";
                return false;
            }
        }
        if ((binding.role == TensorRole::AudioIn || binding.role == TensorRole::AudioOut) && binding.timeAxis < 0)
        {
            error = where + "audio tensor '" + binding.name + "' needs time=<axis>";
            return false;
        }
        if (binding.role == TensorRole::StateIn && binding.stateFrom.empty())
        {
            error = where + "state input '" + binding.name + "' needs from=<output name>";
            return false;
        }
        description.tensors.push_back (binding);
    }
    return true;
}

bool ModelDescription::load (const std::string& path, ModelDescription& description, std::string& error)
{
    std::ifstream file (path);
    if (! file)
    {
        error = path + ": cannot be read";
        return false;
    }
    std::stringstream text;
    text << file.rdbuf();
    if (! parse (text.str(), description, error))
    {
        error = path + ": " + error;
        return false;
    }
    return true;
}

} // namespace elkrt
