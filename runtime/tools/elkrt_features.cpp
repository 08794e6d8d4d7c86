// elkrt_features: log-mel features of a raw float32 signal, through the same front
// end plugins use, for comparison with a reference (librosa) outside C++.
//
//   elkrt_features IN.f32 OUT.f32 [--sample-rate HZ] [--fft N] [--hop N] [--bands N]
//                  [--min-hz HZ] [--max-hz HZ] [--power P] [--scale slaney|htk]
//                  [--norm slaney|none] [--log db|ln] [--floor X] [--block N]
//                  [--filterbank FILE.f64]
// OUT holds frames × bands float32 values, frame after frame; --block feeds the
// signal in host blocks of N samples (streaming), --filterbank writes the weights.
#include "elkrt/log_mel.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace
{
[[noreturn]] void usage (const std::string& why)
{
    std::fprintf (stderr, "elkrt_features: %s\n", why.c_str());
    std::exit (2);
}

template <typename T>
void writeAll (const std::string& path, const std::vector<T>& values)
{
    std::ofstream out (path, std::ios::binary);
    out.write (reinterpret_cast<const char*> (values.data()), static_cast<std::streamsize> (values.size() * sizeof (T)));
    if (! out)
        usage ("cannot write " + path);
}
} // namespace

int main (int argc, char** argv)
{
    if (argc < 3)
        usage ("usage: elkrt_features IN.f32 OUT.f32 [options]");
    elkrt::LogMelSettings settings;
    int block = 0;
    std::string filterbankPath;
    for (int i = 3; i < argc; i += 2)
    {
        const std::string flag = argv[i];
        if (i + 1 >= argc)
            usage (flag + " needs a value");
        const std::string value = argv[i + 1];
        if (flag == "--sample-rate") settings.sampleRate = std::atof (value.c_str());
        else if (flag == "--fft") settings.fftSize = std::atoi (value.c_str());
        else if (flag == "--hop") settings.hop = std::atoi (value.c_str());
        else if (flag == "--bands") settings.melBands = std::atoi (value.c_str());
        else if (flag == "--min-hz") settings.minHz = std::atof (value.c_str());
        else if (flag == "--max-hz") settings.maxHz = std::atof (value.c_str());
        else if (flag == "--power") settings.power = std::atof (value.c_str());
        else if (flag == "--scale") settings.scale = value == "htk" ? elkrt::MelScale::Htk : elkrt::MelScale::Slaney;
        else if (flag == "--norm") settings.norm = value == "none" ? elkrt::MelNorm::None : elkrt::MelNorm::Slaney;
        else if (flag == "--log") settings.log = value == "ln" ? elkrt::FeatureLog::Natural : elkrt::FeatureLog::Decibel;
        else if (flag == "--floor") settings.floor = std::atof (value.c_str());
        else if (flag == "--block") block = std::atoi (value.c_str());
        else if (flag == "--filterbank") filterbankPath = value;
        else usage ("unknown flag " + flag);
    }
    if (const auto problem = elkrt::logMelProblem (settings); ! problem.empty())
        usage (problem);

    std::ifstream in (argv[1], std::ios::binary);
    if (! in)
        usage (std::string ("cannot read ") + argv[1]);
    const std::vector<char> bytes ((std::istreambuf_iterator<char> (in)), std::istreambuf_iterator<char>());
    std::vector<float> signal (bytes.size() / sizeof (float));
    std::memcpy (signal.data(), bytes.data(), signal.size() * sizeof (float));

    elkrt::LogMelFrontEnd frontEnd (settings);
    const int size = static_cast<int> (signal.size());
    const int step = block > 0 ? block : std::max (size, 1);
    std::vector<float> features;
    std::vector<float> frames (static_cast<std::size_t> ((step / settings.hop + 2) * settings.melBands));
    const int room = static_cast<int> (frames.size()) / settings.melBands;
    for (int start = 0; start < size; start += step)
    {
        const int count = std::min (step, size - start);
        int offset = 0;
        while (offset < count)
        {
            int consumed = 0;
            const int made = frontEnd.push (signal.data() + start + offset, count - offset, frames.data(), room, consumed);
            features.insert (features.end(), frames.begin(), frames.begin() + made * settings.melBands);
            offset += consumed;
        }
    }
    writeAll (argv[2], features);
    if (! filterbankPath.empty())
    {
        std::vector<double> weights;
        for (const auto& row : frontEnd.filterbank())
            weights.insert (weights.end(), row.begin(), row.end());
        writeAll (filterbankPath, weights);
    }
    std::printf ("{\"frames\": %zu, \"bands\": %d}\n", features.size() / static_cast<std::size_t> (settings.melBands), settings.melBands);
    return 0;
}
