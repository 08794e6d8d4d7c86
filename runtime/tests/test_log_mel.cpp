// The log-mel front end: streaming gives the frames of one-shot analysis, frames
// start once a whole window is in, a sine lands in the band around its frequency,
// and unusable settings are refused by name. (Its numbers are checked against
// librosa by tests/runtime/test_log_mel.py.)
#include "fake_engine.h"
#include "test_support.h"
#include "elkrt/log_mel.h"

#include <algorithm>
#include <cmath>

using namespace elkrt;
using namespace elkrt_test;

namespace
{
LogMelSettings detectorSettings()
{
    LogMelSettings s;
    s.sampleRate = 16000.0;
    s.fftSize = 512;
    s.hop = 160;
    s.melBands = 40;
    return s;
}

std::vector<float> features (const LogMelSettings& settings, const std::vector<float>& signal,
                             const std::vector<int>& blocks)
{
    LogMelFrontEnd frontEnd (settings);
    std::vector<float> out, frames (static_cast<std::size_t> (4 * settings.melBands));
    std::size_t at = 0, which = 0;
    while (at < signal.size())
    {
        const int block = std::min<int> (blocks[which++ % blocks.size()], static_cast<int> (signal.size() - at));
        int offset = 0;
        while (offset < block)
        {
            int consumed = 0;
            const int made = frontEnd.push (signal.data() + at + offset, block - offset, frames.data(), 4, consumed);
            out.insert (out.end(), frames.begin(), frames.begin() + made * settings.melBands);
            offset += consumed;
        }
        at += static_cast<std::size_t> (block);
    }
    return out;
}
} // namespace

ELKRT_TEST (log_mel_streaming_equals_one_shot)
{
    const auto settings = detectorSettings();
    const auto signal = testSignal (16000, 3);
    const auto whole = features (settings, signal, { 16000 });
    for (const auto& blocks : std::vector<std::vector<int>> { { 1 }, { 64 }, { 100 }, { 7, 500, 33, 160 } })
    {
        const auto streamed = features (settings, signal, blocks);
        CHECK_EQ (streamed.size(), whole.size());
        CHECK (std::equal (streamed.begin(), streamed.end(), whole.begin()));
    }
}

ELKRT_TEST (log_mel_frames_start_after_one_window)
{
    auto settings = detectorSettings();
    const auto signal = testSignal (5000, 4);
    for (int hop : { 1, 160, 512, 700 })
    {
        settings.hop = hop;
        const auto out = features (settings, signal, { 100 });
        CHECK_EQ (out.size() / 40, static_cast<std::size_t> (1 + (5000 - 512) / hop));
    }
    // fewer samples than one window: no frame yet
    const auto none = features (settings, testSignal (511, 5), { 511 });
    CHECK_EQ (none.size(), std::size_t { 0 });
}

ELKRT_TEST (log_mel_sine_lands_in_its_band)
{
    auto settings = detectorSettings();
    const double hz = 1000.0;
    std::vector<float> sine (4096);
    for (std::size_t i = 0; i < sine.size(); ++i)
        sine[i] = static_cast<float> (0.5 * std::sin (2.0 * 3.14159265358979 * hz * static_cast<double> (i) / settings.sampleRate));
    const auto out = features (settings, sine, { 4096 });
    const auto filters = LogMelFrontEnd (settings).filterbank();
    const int bin = static_cast<int> (std::lround (hz * settings.fftSize / settings.sampleRate));
    const auto loudest = std::max_element (out.begin(), out.begin() + 40) - out.begin();
    CHECK (filters[static_cast<std::size_t> (loudest)][static_cast<std::size_t> (bin)] > 0.0);
    // far bands are at least 40 dB below it
    CHECK (out[0] < out[static_cast<std::size_t> (loudest)] - 40.0f);
    CHECK (out[39] < out[static_cast<std::size_t> (loudest)] - 40.0f);
}

ELKRT_TEST (log_mel_refuses_bad_settings)
{
    auto s = detectorSettings();
    CHECK (logMelProblem (s).empty());
    s.fftSize = 500;
    CHECK (logMelProblem (s).find ("fft_size") != std::string::npos);
    s = detectorSettings();
    s.hop = 0;
    CHECK (logMelProblem (s).find ("hop") != std::string::npos);
    s = detectorSettings();
    s.melBands = 300;
    CHECK (logMelProblem (s).find ("mel_bands") != std::string::npos);
    s = detectorSettings();
    s.maxHz = 9000.0;
    CHECK (logMelProblem (s).find ("max_hz") != std::string::npos);
    s = detectorSettings();
    s.floor = 0.0;
    CHECK (logMelProblem (s).find ("floor") != std::string::npos);
}

ELKRT_TEST (mel_window_keeps_the_last_frames_band_major)
{
    // Frame k holds k * 10 + band; after 5 pushes into a window of 3 the model sees
    // frames 2, 3, 4 for each band in turn.
    MelWindow window (2, 3);
    float frame[2];
    for (int k = 0; k < 5; ++k)
    {
        CHECK (window.full() == (k >= 3));
        frame[0] = static_cast<float> (k * 10);
        frame[1] = static_cast<float> (k * 10 + 1);
        window.push (frame);
    }
    std::vector<float> out (6, -1.0f);
    window.copyTo (out.data());
    const std::vector<float> expected { 20, 30, 40, 21, 31, 41 };
    CHECK (out == expected);
    CHECK_EQ (window.pushed(), 5LL);
    window.reset();
    CHECK (! window.full());
}
