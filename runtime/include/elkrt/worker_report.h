#pragma once
// What a host can learn about a plugin binary's decoupled models after it ran them:
// did their workers keep up? A decoupled plugin's audio thread stays fast even when
// its worker is late; only the worker's underruns (zeros in the output) and its
// inference times against the latency budget show it. elkbuild's rt-check asks for
// this through the exported C function below (dlsym on the plugin's module), so a
// late worker fails the check.
//
// elkrt is linked statically into each plugin with hidden symbols: every plugin
// binary keeps its own list and answers for its own models.

#include <string>

namespace elkrt
{

class StreamingModel;

// Called by StreamingModel::prepare() and its destructor (not real-time safe: a lock).
void listModel (const StreamingModel& model);
void unlistModel (const StreamingModel& model);

// One JSON object over the listed decoupled models: "models", "runs", "failed_runs",
// "underrun_samples", "overrun_samples", and of the model whose p99 is the largest
// share of its budget, "p99_us", "max_us" and "budget_us" (one run = one model frame
// for all lanes). Not real-time safe; call while no block is being processed.
std::string workerReport();

} // namespace elkrt

// Writes workerReport() into json (cut to size, NUL-terminated); returns its length.
extern "C" __attribute__ ((visibility ("default"))) int elkrt_worker_report (char* json, int size);
