// Producer/consumer check of the runtime's SpscQueue (the classifier's hand-off):
// every item arrives once, in order, with a full queue refusing pushes instead of blocking.
#include <elkrt/spsc.h>

#include <cstdio>
#include <thread>

struct Item
{
    long sequence;
    float payload[8];
};

int main()
{
    elkrt::SpscQueue<Item, 16> queue;

    Item item {};
    for (int i = 0; i < 16; ++i)
    {
        item.sequence = i;
        if (! queue.push (item))
            return 10;
    }
    if (queue.push (item))
        return 11; // the 17th push must be refused
    Item out {};
    for (int i = 0; i < 16; ++i)
        if (! queue.pop (out) || out.sequence != i)
            return 12;
    if (queue.pop (out) || queue.front() != nullptr)
        return 13;

    constexpr long count = 2000000;
    long refused = 0;
    std::thread producer ([&] {
        Item next {};
        for (long i = 0; i < count; ++i)
        {
            next.sequence = i;
            for (auto& value : next.payload)
                value = static_cast<float> (i);
            while (! queue.push (next))
                ++refused;
        }
    });
    long expected = 0;
    while (expected < count)
    {
        if (! queue.pop (out))
            continue;
        if (out.sequence != expected)
        {
            std::printf ("out of order: %ld instead of %ld\n", out.sequence, expected);
            return 14;
        }
        for (auto value : out.payload)
            if (value != static_cast<float> (expected))
                return 15; // a torn item
        ++expected;
    }
    producer.join();
    std::printf ("%ld items in order (%ld pushes refused while full)\n", expected, refused);
    return 0;
}
