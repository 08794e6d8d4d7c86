#include "elkrt/inference_pool.h"

#include <algorithm>
#include <cstdlib>

#include <pthread.h>
#include <sched.h>

namespace elkrt
{
namespace
{

int defaultThreads()
{
    if (const char* configured = std::getenv ("ELKRT_POOL_THREADS"))
    {
        const int threads = std::atoi (configured);
        if (threads >= 1)
            return std::min (threads, 16);
    }
    // Leave the audio thread a core of its own: one worker on a 2-core machine.
    return std::thread::hardware_concurrency() > 2 ? 2 : 1;
}

int defaultPriority()
{
    if (const char* configured = std::getenv ("ELKRT_POOL_PRIORITY"))
        return std::max (0, std::atoi (configured));
    return 40;
}

} // namespace

InferencePool::InferencePool (PoolOptions poolOptions)
    : options (poolOptions), workerRan (static_cast<std::size_t> (poolOptions.threads >= 1 ? poolOptions.threads : defaultThreads()))
{
    if (options.threads < 1)
        options.threads = static_cast<int> (workerRan.size());
    if (options.realtimePriority < 0)
        options.realtimePriority = defaultPriority();
    options.minIdleSleep = std::max (options.minIdleSleep, std::chrono::microseconds (1));
    options.maxIdleSleep = std::max (options.maxIdleSleep, options.minIdleSleep);
}

InferencePool::~InferencePool()
{
    running.store (false);
    for (auto& worker : workers)
        worker.join();
}

bool InferencePool::attach (PoolClient& client)
{
    std::lock_guard<std::mutex> lock (membership);
    for (auto& slot : slots)
    {
        PoolClient* empty = nullptr;
        if (slot.client.compare_exchange_strong (empty, &client))
        {
            if (workers.empty())
                start();
            return true;
        }
    }
    return false;
}

void InferencePool::detach (PoolClient& client)
{
    std::lock_guard<std::mutex> lock (membership);
    for (auto& slot : slots)
    {
        if (slot.client.load() != &client)
            continue;
        slot.client.store (nullptr);
        // A worker that claimed the slot before it was emptied may still run the
        // client: wait for it to let go. Any later claim finds the slot empty.
        while (slot.claimed.load())
            std::this_thread::sleep_for (std::chrono::microseconds (50));
    }
}

int InferencePool::workersThatRan() const noexcept
{
    int count = 0;
    for (const auto& ran : workerRan)
        count += ran.load (std::memory_order_relaxed) ? 1 : 0;
    return count;
}

void InferencePool::start()
{
    running.store (true);
    for (int i = 0; i < options.threads; ++i)
        workers.emplace_back ([this, i] { workerLoop (static_cast<std::size_t> (i)); });
}

void InferencePool::workerLoop (std::size_t workerIndex)
{
    if (options.realtimePriority > 0)
    {
        sched_param parameters {};
        parameters.sched_priority = std::min (options.realtimePriority, sched_get_priority_max (SCHED_FIFO));
        if (pthread_setschedparam (pthread_self(), SCHED_FIFO, &parameters) == 0)
            realtimeGranted.fetch_add (1);
    }
    auto idleSleep = options.minIdleSleep;
    while (running.load (std::memory_order_acquire))
    {
        bool worked = false;
        for (auto& slot : slots)
        {
            if (slot.client.load (std::memory_order_acquire) == nullptr)
                continue;
            if (slot.claimed.exchange (true, std::memory_order_acq_rel))
                continue; // another worker runs this client: frames stay in order
            if (PoolClient* client = slot.client.load (std::memory_order_acquire); client != nullptr && client->hasPending())
            {
                client->processPending();
                worked = true;
                workerRan[workerIndex].store (true, std::memory_order_relaxed);
            }
            slot.claimed.store (false, std::memory_order_release);
        }
        if (worked)
        {
            idleSleep = options.minIdleSleep;
            continue;
        }
        // Nothing to do: sleep, twice as long each idle round up to the bound that
        // the latency budget counts (the audio thread never wakes us).
        std::this_thread::sleep_for (idleSleep);
        idleSleep = std::min (idleSleep * 2, options.maxIdleSleep);
    }
}

} // namespace elkrt
