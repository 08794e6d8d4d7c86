// One process-wide pool of inference workers shared by every streaming model in
// the process (as anira does), instead of a thread per instance: eight instances
// on a 4-core board must not mean eight runnable inference threads.
//
// Waking: the audio thread only writes samples into its lock-free queue. Workers
// poll their clients and, when none has work, sleep with exponential backoff
// bounded by maxIdleSleep. A semaphore or condition variable would be faster to
// wake but makes the audio thread enter the kernel (a mode switch under
// Xenomai/EVL); the bounded sleep is counted in the latency budget instead.
//
// A client is handled by one worker at a time (a claim flag per slot), so its
// frames run in order on one engine session: stateful models stay exact.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace elkrt
{

class PoolClient
{
public:
    virtual ~PoolClient() = default;
    // Called on a worker; does all the work the client has now.
    virtual void processPending() noexcept = 0;
    virtual bool hasPending() const noexcept = 0;
};

struct PoolOptions
{
    int threads = 0; // 0: ELKRT_POOL_THREADS from the environment, else 1 on <= 2 cores, else 2
    std::chrono::microseconds minIdleSleep { 20 };
    std::chrono::microseconds maxIdleSleep { 250 };
    // SCHED_FIFO priority of the workers, below the audio thread's: a worker at normal
    // priority behind a busy core's other work misses its one-block budget. -1:
    // ELKRT_POOL_PRIORITY from the environment, else 40; 0: normal scheduling. Without
    // the right to real-time scheduling the workers run at normal priority.
    int realtimePriority = -1;
};

class InferencePool
{
public:
    static constexpr std::size_t maxClients = 64;

    explicit InferencePool (PoolOptions options = {});
    ~InferencePool();
    InferencePool (const InferencePool&) = delete;
    InferencePool& operator= (const InferencePool&) = delete;

    // The process-wide pool (of this copy of the library). configureShared() before
    // its first use sets its size; later calls return false and change nothing.
    static InferencePool& shared();
    static bool configureShared (const PoolOptions& options);

    // Not real-time safe: register or remove a client. detach() returns once no
    // worker runs the client any more. Threads start with the first client.
    bool attach (PoolClient& client);
    void detach (PoolClient& client);

    int threadCount() const noexcept { return static_cast<int> (options.threads); }
    std::chrono::microseconds maxIdleSleep() const noexcept { return options.maxIdleSleep; }
    // Distinct worker threads that have run a client so far (for tests and benches).
    int workersThatRan() const noexcept;
    // Workers that got the real-time priority asked for.
    int realtimeWorkers() const noexcept { return realtimeGranted.load(); }

private:
    struct Slot
    {
        std::atomic<PoolClient*> client { nullptr };
        std::atomic<bool> claimed { false };
    };

    void start();
    void workerLoop (std::size_t workerIndex);

    PoolOptions options;
    std::array<Slot, maxClients> slots {};
    std::mutex membership; // attach/detach only, never taken by a worker or the audio thread
    std::vector<std::thread> workers;
    std::vector<std::atomic<bool>> workerRan;
    std::atomic<bool> running { false };
    std::atomic<int> realtimeGranted { 0 };
};

} // namespace elkrt
