#include "elkrt/log_mel.h"

#include <algorithm>
#include <cmath>

namespace elkrt
{
namespace
{
constexpr double pi = 3.14159265358979323846;

// Slaney's Auditory Toolbox scale, as librosa defines it: 200/3 Hz per mel up to
// 1 kHz (mel 15), then 27 mels per factor 6.4.
constexpr double slaneyHzPerMel = 200.0 / 3.0;
constexpr double slaneyBreakHz = 1000.0;
const double slaneyBreakMel = slaneyBreakHz / slaneyHzPerMel;
const double slaneyLogStep = std::log (6.4) / 27.0;

double hzToMel (double hz, MelScale scale)
{
    if (scale == MelScale::Htk)
        return 2595.0 * std::log10 (1.0 + hz / 700.0);
    if (hz < slaneyBreakHz)
        return hz / slaneyHzPerMel;
    return slaneyBreakMel + std::log (hz / slaneyBreakHz) / slaneyLogStep;
}

double melToHz (double mel, MelScale scale)
{
    if (scale == MelScale::Htk)
        return 700.0 * (std::pow (10.0, mel / 2595.0) - 1.0);
    if (mel < slaneyBreakMel)
        return mel * slaneyHzPerMel;
    return slaneyBreakHz * std::exp (slaneyLogStep * (mel - slaneyBreakMel));
}

double topHz (const LogMelSettings& s) { return s.maxHz > 0.0 ? s.maxHz : s.sampleRate / 2.0; }

bool powerOfTwo (int n) { return n > 1 && (n & (n - 1)) == 0; }
} // namespace

std::string logMelProblem (const LogMelSettings& s)
{
    if (! (s.sampleRate > 0.0))
        return "sample_rate must be above 0";
    if (! powerOfTwo (s.fftSize) || s.fftSize > (1 << 16))
        return "fft_size must be a power of two from 2 to 65536 (is " + std::to_string (s.fftSize) + ")";
    if (s.hop < 1)
        return "hop must be 1 or more (is " + std::to_string (s.hop) + ")";
    if (s.melBands < 1 || s.melBands > s.fftSize / 2 + 1)
        return "mel_bands must be from 1 to fft_size / 2 + 1 (is " + std::to_string (s.melBands) + ")";
    if (s.minHz < 0.0 || ! (topHz (s) > s.minHz) || topHz (s) > s.sampleRate / 2.0)
        return "min_hz and max_hz must satisfy 0 <= min_hz < max_hz <= sample_rate / 2";
    if (! (s.power > 0.0))
        return "power must be above 0 (2: power spectrum, 1: magnitude)";
    if (! (s.floor > 0.0))
        return "floor (amin or log offset) must be above 0";
    return {};
}

LogMelFrontEnd::LogMelFrontEnd (const LogMelSettings& settings)
    : config (settings),
      window (static_cast<std::size_t> (settings.fftSize)),
      spectrum (static_cast<std::size_t> (settings.fftSize)),
      twiddles (static_cast<std::size_t> (settings.fftSize / 2)),
      bitReversed (static_cast<std::size_t> (settings.fftSize)),
      bins (static_cast<std::size_t> (settings.fftSize / 2 + 1)),
      history (static_cast<std::size_t> (settings.fftSize), 0.0f),
      unrolled (static_cast<std::size_t> (settings.fftSize), 0.0f)
{
    const int n = config.fftSize;
    // Periodic Hann (scipy's get_window("hann", n, fftbins=True), librosa's default).
    for (int i = 0; i < n; ++i)
        window[static_cast<std::size_t> (i)] = 0.5 - 0.5 * std::cos (2.0 * pi * i / n);
    for (int k = 0; k < n / 2; ++k)
        twiddles[static_cast<std::size_t> (k)] = std::polar (1.0, -2.0 * pi * k / n);
    int bitsCount = 0;
    while ((1 << bitsCount) < n)
        ++bitsCount;
    for (int i = 0; i < n; ++i)
    {
        int reversed = 0;
        for (int b = 0; b < bitsCount; ++b)
            reversed |= ((i >> b) & 1) << (bitsCount - 1 - b);
        bitReversed[static_cast<std::size_t> (i)] = reversed;
    }

    // Triangles between mel_bands + 2 points equally spaced in mel, evaluated at the
    // FFT bin frequencies (librosa.filters.mel), kept as a run of non-zero weights.
    const int bands = config.melBands, binCount = n / 2 + 1;
    const double lowMel = hzToMel (config.minHz, config.scale), highMel = hzToMel (topHz (config), config.scale);
    std::vector<double> edges (static_cast<std::size_t> (bands + 2));
    for (int i = 0; i < bands + 2; ++i)
        edges[static_cast<std::size_t> (i)] = melToHz (lowMel + (highMel - lowMel) * i / (bands + 1), config.scale);
    bandsTable.resize (static_cast<std::size_t> (bands));
    for (int m = 0; m < bands; ++m)
    {
        const double left = edges[static_cast<std::size_t> (m)], centre = edges[static_cast<std::size_t> (m + 1)],
                     right = edges[static_cast<std::size_t> (m + 2)];
        const double scale = config.norm == MelNorm::Slaney ? 2.0 / (right - left) : 1.0;
        auto& band = bandsTable[static_cast<std::size_t> (m)];
        band.firstBin = -1;
        for (int k = 0; k < binCount; ++k)
        {
            const double hz = config.sampleRate * k / n;
            const double weight = std::max (0.0, std::min ((hz - left) / (centre - left), (right - hz) / (right - centre)));
            if (weight <= 0.0 && band.firstBin < 0)
                continue;
            if (weight <= 0.0)
                break;
            if (band.firstBin < 0)
                band.firstBin = k;
            band.weights.push_back (weight * scale);
        }
        if (band.firstBin < 0)
            band.firstBin = 0; // a band narrower than one bin: all zero, as in librosa
    }
    reset();
}

void LogMelFrontEnd::reset() noexcept
{
    std::fill (history.begin(), history.end(), 0.0f);
    writeAt = 0;
    seen = 0;
    sinceFrame = 0;
}

void LogMelFrontEnd::fft() noexcept
{
    const int n = config.fftSize;
    for (int i = 0; i < n; ++i)
    {
        const int j = bitReversed[static_cast<std::size_t> (i)];
        if (i < j)
            std::swap (spectrum[static_cast<std::size_t> (i)], spectrum[static_cast<std::size_t> (j)]);
    }
    for (int size = 2; size <= n; size *= 2)
    {
        const int half = size / 2, stride = n / size;
        for (int start = 0; start < n; start += size)
            for (int k = 0; k < half; ++k)
            {
                auto& a = spectrum[static_cast<std::size_t> (start + k)];
                auto& b = spectrum[static_cast<std::size_t> (start + k + half)];
                const auto t = twiddles[static_cast<std::size_t> (k * stride)] * b;
                b = a - t;
                a += t;
            }
    }
}

void LogMelFrontEnd::analyse (const float* samples, float* features) noexcept
{
    const int n = config.fftSize;
    for (int i = 0; i < n; ++i)
        spectrum[static_cast<std::size_t> (i)] = { window[static_cast<std::size_t> (i)] * samples[i], 0.0 };
    fft();
    for (int k = 0; k <= n / 2; ++k)
    {
        const double magnitude = std::abs (spectrum[static_cast<std::size_t> (k)]);
        bins[static_cast<std::size_t> (k)] = config.power == 2.0 ? magnitude * magnitude : std::pow (magnitude, config.power);
    }
    for (int m = 0; m < config.melBands; ++m)
    {
        const auto& band = bandsTable[static_cast<std::size_t> (m)];
        double energy = 0.0;
        for (std::size_t w = 0; w < band.weights.size(); ++w)
            energy += band.weights[w] * bins[static_cast<std::size_t> (band.firstBin) + w];
        features[m] = static_cast<float> (config.log == FeatureLog::Decibel
                                              ? 10.0 * std::log10 (std::max (config.floor, energy))
                                              : std::log (energy + config.floor));
    }
}

int LogMelFrontEnd::push (const float* samples, int count, float* frames, int maxFrames, int& consumed) noexcept
{
    const int n = config.fftSize;
    int made = 0;
    consumed = 0;
    while (consumed < count)
    {
        history[static_cast<std::size_t> (writeAt)] = samples[consumed++];
        writeAt = (writeAt + 1) % n;
        ++seen;
        if (seen < n)
            continue;
        // the first frame once fftSize samples are in, then one every hop
        if (seen > n && ++sinceFrame < config.hop)
            continue;
        sinceFrame = 0;
        for (int i = 0; i < n; ++i) // the ring, oldest sample first
            unrolled[static_cast<std::size_t> (i)] = history[static_cast<std::size_t> ((writeAt + i) % n)];
        analyse (unrolled.data(), frames + static_cast<std::ptrdiff_t> (made) * config.melBands);
        if (++made == maxFrames)
            break;
    }
    return made;
}

std::vector<std::vector<double>> LogMelFrontEnd::filterbank() const
{
    std::vector<std::vector<double>> rows;
    for (const auto& band : bandsTable)
    {
        std::vector<double> row (static_cast<std::size_t> (config.fftSize / 2 + 1), 0.0);
        for (std::size_t w = 0; w < band.weights.size(); ++w)
            row[static_cast<std::size_t> (band.firstBin) + w] = band.weights[w];
        rows.push_back (std::move (row));
    }
    return rows;
}

MelWindow::MelWindow (int bands, int frames)
    : bandCount (bands), frameCount (frames), ring (static_cast<std::size_t> (bands) * static_cast<std::size_t> (frames), 0.0f)
{
}

void MelWindow::push (const float* frame) noexcept
{
    std::copy (frame, frame + bandCount, ring.begin() + static_cast<std::ptrdiff_t> (next) * bandCount);
    next = (next + 1) % frameCount;
    ++total;
}

void MelWindow::copyTo (float* out) const noexcept
{
    // `next` is the oldest frame once the ring has wrapped; before that, slots not yet
    // written still hold zeros and come first.
    for (int t = 0; t < frameCount; ++t)
    {
        const float* frame = ring.data() + static_cast<std::ptrdiff_t> ((next + t) % frameCount) * bandCount;
        for (int b = 0; b < bandCount; ++b)
            out[static_cast<std::ptrdiff_t> (b) * frameCount + t] = frame[b];
    }
}

void MelWindow::reset() noexcept
{
    std::fill (ring.begin(), ring.end(), 0.0f);
    next = 0;
    total = 0;
}

} // namespace elkrt
