// A tiny persistent thread pool for the kernels. The calling (JS) thread always works; the others
// spin briefly after each job (back-to-back kernels are common) and then sleep on a condition
// variable. Work is claimed dynamically in chunks from a shared counter, so a worker that is late
// (descheduled because other processes use the cores) never holds the caller up: the caller takes
// the chunks itself and the latecomer finds nothing left. Plain C++17, no OpenMP, so the addon needs
// no runtime library beyond libstdc++.
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace quorum {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }
  // Runs fn(begin, end) over [0, n) in chunks of `grain` (the last one shorter), on the calling thread
  // and up to min(maxThreads, size()) - 1 workers; returns when every chunk is done. Chunks run in no
  // particular order and on no particular thread (use thread_local for scratch, never a thread id).
  void parallelFor(long n, long grain, int maxThreads, const std::function<void(long, long)>& fn);

 private:
  void workerLoop();
  long drain();

  int size_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::mutex runMutex_;
  std::atomic<unsigned long> generation_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> open_{false};   // a job is accepting helpers
  std::atomic<int> active_{0};      // workers inside the current job
  std::atomic<int> joined_{0};      // workers that joined the current job
  std::atomic<long> next_{0};       // next unclaimed index
  // The current job; written by the caller only while no worker is inside a job (open_ false, active_ 0).
  const std::function<void(long, long)>* job_ = nullptr;
  long n_ = 0, grain_ = 1;
  int maxJoin_ = 0;
  std::atomic<bool> stop_{false};
  // The caller blocks here when a helper is slow to finish its last chunk (see parallelFor).
  std::mutex doneMutex_;
  std::condition_variable done_;
  std::atomic<bool> callerWaiting_{false};
  // Caller-side statistics (under runMutex_): jobs in a row the helpers took no chunk of, and jobs
  // left to run without them.
  int misses_ = 0;
  int soloLeft_ = 0;
};

// The process-wide pool used by every kernel (resized by setThreads).
ThreadPool& pool();
void setPoolThreads(int threads);
int poolThreads();

// Shorthand: parallelFor on the process-wide pool with all its threads.
inline void parallelFor(long n, long grain, const std::function<void(long, long)>& fn) {
  pool().parallelFor(n, grain, poolThreads(), fn);
}

}  // namespace quorum
