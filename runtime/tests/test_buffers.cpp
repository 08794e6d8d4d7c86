#include "fake_engine.h"
#include "test_support.h"

#include "elkrt/frame_fifo.h"
#include "elkrt/model_description.h"
#include "elkrt/ring_buffer.h"
#include "elkrt/spsc.h"

#include <thread>

using namespace elkrt;

ELKRT_TEST (ring_buffer_wraparound)
{
    RingBuffer ring;
    ring.allocate (7);
    std::vector<float> written;
    float next = 1.0f;
    // Writes of every size around the capacity, so each wraps at a different place.
    for (std::size_t count : { 3u, 5u, 7u, 2u, 9u, 1u, 6u, 4u, 13u, 7u })
    {
        std::vector<float> chunk;
        for (std::size_t i = 0; i < count; ++i)
            chunk.push_back (next++);
        ring.write (chunk.data(), chunk.size());
        written.insert (written.end(), chunk.begin(), chunk.end());
        for (std::size_t want = 1; want <= 7; ++want)
        {
            std::vector<float> latest (want);
            ring.copyLatest (latest.data(), want);
            for (std::size_t i = 0; i < want; ++i)
            {
                // Before the first sample written: zeros.
                const auto back = want - i;
                CHECK_EQ (latest[i], back > written.size() ? 0.0f : written[written.size() - back]);
            }
        }
    }
}

ELKRT_TEST (ring_buffer_zeros_only_before_first_sample)
{
    RingBuffer ring;
    ring.allocate (5);
    const float two[2] = { 1.0f, 2.0f };
    ring.write (two, 2);
    std::vector<float> latest (5);
    ring.copyLatest (latest.data(), 5);
    CHECK (latest == (std::vector<float> { 0, 0, 0, 1, 2 }));
    ring.reset();
    ring.copyLatest (latest.data(), 5);
    CHECK (latest == (std::vector<float> (5, 0.0f)));
}

ELKRT_TEST (frame_fifo_push_pop_wraparound)
{
    FrameFifo fifo;
    fifo.allocate (10);
    CHECK_EQ (fifo.pushZeros (3), 3u);
    float expected = 0.0f, next = 1.0f;
    std::vector<float> out (10);
    CHECK_EQ (fifo.pop (out.data(), 3), 3u);
    CHECK (out[0] == 0.0f && out[2] == 0.0f);
    for (int round = 0; round < 50; ++round)
    {
        const std::size_t in = 1 + static_cast<std::size_t> (round * 7 % 9), take = 1 + static_cast<std::size_t> (round * 5 % 8);
        std::vector<float> chunk (in);
        for (auto& sample : chunk)
            sample = next++;
        const auto pushed = fifo.push (chunk.data(), in);
        next -= static_cast<float> (in - pushed); // a full FIFO takes only what fits
        const auto popped = fifo.pop (out.data(), take);
        for (std::size_t i = 0; i < popped; ++i)
            CHECK_EQ (out[i], ++expected);
        CHECK (fifo.size() <= fifo.capacity());
    }
    const auto room = fifo.space();
    CHECK_EQ (fifo.push (out.data(), 100), room);
    CHECK_EQ (fifo.space(), 0u);
}

ELKRT_TEST (spsc_sample_queue_threads)
{
    SpscSampleQueue queue;
    queue.allocate (1000); // rounds up to 1024
    CHECK_EQ (queue.capacity(), 1024u);
    constexpr std::size_t total = 2000000;
    std::thread producer ([&] {
        float chunk[37];
        std::size_t sent = 0;
        while (sent < total)
        {
            const std::size_t count = std::min<std::size_t> (1 + sent % 37, total - sent);
            for (std::size_t i = 0; i < count; ++i)
                chunk[i] = static_cast<float> ((sent + i) % 65536);
            if (queue.write (chunk, count))
                sent += count;
            else
                std::this_thread::yield();
        }
    });
    std::size_t received = 0;
    bool inOrder = true;
    float chunk[53];
    while (received < total)
    {
        const auto got = queue.read (chunk, 1 + received % 53);
        for (std::size_t i = 0; i < got; ++i)
            inOrder = inOrder && chunk[i] == static_cast<float> ((received + i) % 65536);
        received += got;
        if (got == 0)
            std::this_thread::yield();
    }
    producer.join();
    CHECK (inOrder);
    CHECK_EQ (queue.readable(), 0u);
}

ELKRT_TEST (spsc_queue_items_in_order)
{
    SpscQueue<long, 8> queue;
    constexpr long total = 200000;
    std::thread producer ([&] {
        for (long i = 0; i < total;)
            if (queue.push (i))
                ++i;
            else
                std::this_thread::yield();
    });
    long expected = 0, item = 0;
    while (expected < total)
    {
        if (queue.pop (item))
        {
            CHECK_EQ (item, expected);
            ++expected;
        }
        else
            std::this_thread::yield();
    }
    producer.join();
    CHECK_EQ (queue.size(), 0u);
}

ELKRT_TEST (description_parse)
{
    ModelDescription description;
    std::string error;
    const bool parsed = ModelDescription::parse (
        "# an LSTM amp\n"
        "input x audio time=1 channel=2 shape=1,64,1\n"
        "input h state from=h_out\n"
        "input sr constant value=48000\n"
        "output y audio time=1\n"
        "output h_out state\n"
        "output gain extra\n"
        "sample_rate 48000\n"
        "model_latency 3\n",
        description, error);
    CHECK (parsed);
    CHECK_EQ (description.tensors.size(), 6u);
    CHECK (description.tensors[0].role == TensorRole::AudioIn);
    CHECK_EQ (description.tensors[0].timeAxis, 1);
    CHECK_EQ (description.tensors[0].channelAxis, 2);
    CHECK (description.tensors[0].shape == (std::vector<int64_t> { 1, 64, 1 }));
    CHECK (description.tensors[1].stateFrom == "h_out");
    CHECK_EQ (description.tensors[2].constantValue, 48000.0);
    CHECK (description.tensors[5].role == TensorRole::Extra);
    CHECK_EQ (description.sampleRate, 48000.0);
    CHECK_EQ (description.modelLatencySamples, 3);
    CHECK_EQ (description.shapeOverrides().size(), 1u);

    CHECK (! ModelDescription::parse ("input x audio\n", description, error));
    CHECK (error.find ("'x'") != std::string::npos && error.find ("time=") != std::string::npos);
    CHECK (! ModelDescription::parse ("input h state\n", description, error));
    CHECK (error.find ("from=") != std::string::npos);
    CHECK (! ModelDescription::parse ("output y constant\n", description, error));
    CHECK (error.find ("'y'") != std::string::npos);
}

ELKRT_TEST (description_refusals_name_the_tensor)
{
    using namespace elkrt_test;
    std::string error;
    // An input without a role.
    {
        ModelDescription description;
        description.tensors = { audio ("x", true, 1, 2), audio ("y", false, 1, 2) };
        StreamingModel model (statefulEngine (16), description);
        CHECK (! model.prepare (inlineConfig (16), error));
        CHECK (error.find ("'h'") != std::string::npos);
    }
    // A state input fed from an output of another size.
    {
        auto engine = std::make_unique<FakeEngine> (
            std::vector<TensorSpec> { floats ("x", { 1, 8 }), floats ("h", { 1, 3 }) },
            std::vector<TensorSpec> { floats ("y", { 1, 8 }), floats ("h_out", { 1, 2 }) }, [] (FakeEngine&) { return true; });
        ModelDescription description;
        description.tensors = { audio ("x", true, 1), audio ("y", false, 1), stateIn ("h", "h_out"), stateOut ("h_out") };
        StreamingModel model (std::move (engine), description);
        CHECK (! model.prepare (inlineConfig (8), error));
        CHECK (error.find ("'h'") != std::string::npos && error.find ("'h_out'") != std::string::npos);
    }
    // Output longer than input: no frame + context reading fits.
    {
        auto engine = std::make_unique<FakeEngine> (std::vector<TensorSpec> { floats ("x", { 1, 8 }) },
                                                    std::vector<TensorSpec> { floats ("y", { 1, 9 }) },
                                                    [] (FakeEngine&) { return true; });
        ModelDescription description;
        description.tensors = { audio ("x", true, 1), audio ("y", false, 1) };
        StreamingModel model (std::move (engine), description);
        CHECK (! model.prepare (inlineConfig (8), error));
        CHECK (error.find ("'x'") != std::string::npos);
    }
    // Another host rate than the model's.
    {
        ModelDescription description;
        description.tensors = { audio ("x", true, 1), audio ("y", false, 1) };
        description.sampleRate = 16000;
        StreamingModel refused (std::make_unique<FakeEngine> (std::vector<TensorSpec> { floats ("x", { 1, 8 }) },
                                                              std::vector<TensorSpec> { floats ("y", { 1, 8 }) },
                                                              [] (FakeEngine&) { return true; }),
                                description);
        CHECK (! refused.prepare (inlineConfig (8), error));
        CHECK (error.find ("16000") != std::string::npos && error.find ("48000") != std::string::npos);
    }
    // A non-audio axis that is not 1.
    {
        auto engine = std::make_unique<FakeEngine> (std::vector<TensorSpec> { floats ("x", { 2, 8 }) },
                                                    std::vector<TensorSpec> { floats ("y", { 2, 8 }) },
                                                    [] (FakeEngine&) { return true; });
        ModelDescription description;
        description.tensors = { audio ("x", true, 1), audio ("y", false, 1) };
        StreamingModel model (std::move (engine), description);
        CHECK (! model.prepare (inlineConfig (8), error));
        CHECK (error.find ("'x'") != std::string::npos && error.find ("axis 0") != std::string::npos);
    }
}
