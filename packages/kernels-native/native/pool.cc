#include "pool.h"

#include <memory>

namespace quorum {

namespace {
inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
constexpr int kSpinIterations = 1 << 14;  // ~50-100 us of polling before sleeping
}  // namespace

ThreadPool::ThreadPool(int threads) : size_(threads < 1 ? 1 : threads) {
  for (int t = 1; t < size_; t++) workers_.emplace_back([this, t] { workerLoop(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::workerLoop(int tid) {
  unsigned long seen = 0;
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spins < kSpinIterations) {
      cpuRelax();
      spins++;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_) return;
    const int nt = jobThreads_;
    if (tid < nt) {
      (*job_)(tid, nt);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
}

void ThreadPool::run(int want, const std::function<void(int, int)>& fn) {
  int nt = want < 1 ? 1 : (want > size_ ? size_ : want);
  if (nt == 1) {
    fn(0, 1);
    return;
  }
  std::lock_guard<std::mutex> runLock(runMutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    jobThreads_ = nt;
    pending_.store(nt - 1, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  wake_.notify_all();
  fn(0, nt);
  while (pending_.load(std::memory_order_acquire) > 0) cpuRelax();
}

namespace {
std::unique_ptr<ThreadPool> gPool;
int gThreads = 2;
}  // namespace

ThreadPool& pool() {
  if (!gPool) gPool = std::make_unique<ThreadPool>(gThreads);
  return *gPool;
}

void setPoolThreads(int threads) {
  if (threads < 1) threads = 1;
  if (threads == gThreads && gPool) return;
  gThreads = threads;
  gPool.reset();
}

int poolThreads() { return gThreads; }

}  // namespace quorum
