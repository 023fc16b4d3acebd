// A tiny persistent thread pool for the kernels: the calling (JS) thread is worker 0, the others
// spin briefly after each job (back-to-back kernels are common) and then sleep on a condition
// variable. Plain C++17, no OpenMP, so the addon needs no runtime library beyond libstdc++.
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
  // Runs fn(tid, nt) for tid in [0, nt), nt = min(want, size()); returns when all are done.
  void run(int want, const std::function<void(int, int)>& fn);

 private:
  void workerLoop(int tid);

  int size_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::mutex runMutex_;
  std::atomic<unsigned long> generation_{0};
  std::atomic<int> pending_{0};
  const std::function<void(int, int)>* job_ = nullptr;
  int jobThreads_ = 0;
  bool stop_ = false;
};

// The process-wide pool used by every kernel (resized by setThreads).
ThreadPool& pool();
void setPoolThreads(int threads);
int poolThreads();

// Splits [0, n) into nt nearly equal contiguous parts; part t is [begin, end).
inline void splitRange(long n, int t, int nt, long* begin, long* end) {
  *begin = n * t / nt;
  *end = n * (t + 1) / nt;
}

}  // namespace quorum
