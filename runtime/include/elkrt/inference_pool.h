// One process-wide pool of inference workers shared by every streaming model in
// the process (as anira does), instead of a thread per instance: eight instances
// on a 4-core board must not mean eight runnable inference threads. Every plugin
// has its own copy of libelkrt, so the process-wide pool lives in libelkrt_pool.so.1
// (elkrt/pool_abi.h), bundled with each plugin and loaded once; sharedPool() reaches it.
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
#include <cstdint>
#include <mutex>
#include <string>
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

// What a streaming model needs of a pool: this library's InferencePool, or the
// process-wide one of libelkrt_pool.so.1.
class WorkerPool
{
public:
    static constexpr std::size_t maxClients = 64;

    virtual ~WorkerPool() = default;
    // Not real-time safe: register or remove a client. detach() returns once no
    // worker runs the client any more. Threads start with the first client.
    virtual bool attach (PoolClient& client) = 0;
    virtual void detach (PoolClient& client) = 0;

    virtual int threadCount() const noexcept = 0;
    virtual std::chrono::microseconds maxIdleSleep() const noexcept = 0;
    // Distinct worker threads that have run a client so far (for tests and benches).
    virtual int workersThatRan() const noexcept = 0;
    // Workers that got the real-time priority asked for.
    virtual int realtimeWorkers() const noexcept = 0;
    // The same for every user of one pool, across plugins.
    virtual std::uint64_t identity() const noexcept = 0;
};

class InferencePool final : public WorkerPool
{
public:
    explicit InferencePool (PoolOptions options = {});
    ~InferencePool() override;
    InferencePool (const InferencePool&) = delete;
    InferencePool& operator= (const InferencePool&) = delete;

    bool attach (PoolClient& client) override;
    void detach (PoolClient& client) override;

    int threadCount() const noexcept override { return static_cast<int> (options.threads); }
    std::chrono::microseconds maxIdleSleep() const noexcept override { return options.maxIdleSleep; }
    int workersThatRan() const noexcept override;
    int realtimeWorkers() const noexcept override { return realtimeGranted.load(); }
    std::uint64_t identity() const noexcept override { return reinterpret_cast<std::uintptr_t> (this); }

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

// The pool of the process: libelkrt_pool.so.1's when the copy loaded in the process
// speaks this library's pool ABI, else (logged once on stderr, reason in
// sharedPoolStatus()) a pool of this plugin's own. ELKRT_POOL_SHARING=plugin asks
// for a pool per plugin. configureSharedPool() before the pool's first use sets
// its size; later calls return false and change nothing.
WorkerPool& sharedPool();
bool configureSharedPool (const PoolOptions& options);

struct SharedPoolStatus
{
    bool processWide = false;
    std::string reason; // why not, when not
};
SharedPoolStatus sharedPoolStatus();

} // namespace elkrt
