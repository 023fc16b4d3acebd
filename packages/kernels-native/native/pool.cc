#include "pool.h"

#include <memory>

namespace quorum {

namespace {
inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
constexpr int kSpinIterations = 1 << 14;  // ~50-300 us of polling before sleeping
constexpr int kMinSpin = 1 << 6;
constexpr int kMissesToSolo = 8;
constexpr int kSoloJobs = 256;
}  // namespace

ThreadPool::ThreadPool(int threads) : size_(threads < 1 ? 1 : threads) {
  for (int t = 1; t < size_; t++) workers_.emplace_back([this] { workerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

// Claims and runs chunks of the current job until none is left; returns how many it ran.
long ThreadPool::drain() {
  const long n = n_, grain = grain_;
  const auto& fn = *job_;
  long ran = 0;
  for (;;) {
    const long begin = next_.fetch_add(grain, std::memory_order_relaxed);
    if (begin >= n) return ran;
    fn(begin, begin + grain < n ? begin + grain : n);
    ran++;
  }
}

void ThreadPool::workerLoop() {
  unsigned long seen = 0;
  // Adaptive polling: a helper that keeps arriving after the caller has taken every chunk is not
  // getting a core of its own (other processes use it), and its polling would only take time from
  // the caller; it then polls less and sleeps sooner. A helper that finds work polls longer again.
  int spinLimit = kSpinIterations;
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spins < spinLimit) {
      cpuRelax();
      spins++;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
      sleepers_.fetch_sub(1);
    }
    seen = generation_.load();
    if (stop_.load()) return;
    // Join the open job, if any, unless it already has its helpers. The caller closes the job and then
    // waits for active_ to drop to 0, so once we are counted in active_ and see the job open, its fields
    // stay valid until we leave.
    active_.fetch_add(1);
    const bool useful = open_.load() && joined_.fetch_add(1) < maxJoin_ && drain() > 0;
    spinLimit = useful ? std::min(kSpinIterations, spinLimit * 2) : std::max(kMinSpin, spinLimit / 2);
    if (active_.fetch_sub(1) == 1 && callerWaiting_.load()) {
      std::lock_guard<std::mutex> lock(doneMutex_);
      done_.notify_one();
    }
  }
}

void ThreadPool::parallelFor(long n, long grain, int maxThreads, const std::function<void(long, long)>& fn) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const long chunks = (n + grain - 1) / grain;
  int nt = maxThreads < 1 ? 1 : (maxThreads > size_ ? size_ : maxThreads);
  if (chunks < nt) nt = static_cast<int>(chunks);
  if (nt <= 1) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> runLock(runMutex_);
  // Solo spells: when the helpers took no chunk of the last kMissesToSolo jobs, the cores are busy
  // with other processes and waking helpers only costs context switches; run the next kSoloJobs jobs
  // on this thread alone, then invite the helpers again.
  if (soloLeft_ > 0) {
    soloLeft_--;
    fn(0, n);
    return;
  }
  job_ = &fn;
  n_ = n;
  grain_ = grain;
  maxJoin_ = nt - 1;
  joined_.store(0);
  next_.store(0);
  open_.store(true);
  generation_.fetch_add(1);
  if (sleepers_.load() > 0) {
    { std::lock_guard<std::mutex> lock(mutex_); }
    wake_.notify_all();
  }
  const long mine = drain();
  open_.store(false);
  // A helper still inside its last chunk: spin a little, then block. Blocking leaves this core idle,
  // so a helper that other processes pushed off its own core gets moved here by the scheduler
  // instead of waiting for its core to come free.
  for (int spins = 0; spins < kSpinIterations / 4 && active_.load(std::memory_order_acquire) > 0; spins++)
    cpuRelax();
  if (active_.load() > 0) {
    std::unique_lock<std::mutex> lock(doneMutex_);
    callerWaiting_.store(true);
    done_.wait(lock, [&] { return active_.load() == 0; });
    callerWaiting_.store(false);
  }
  if (mine < chunks) {
    misses_ = 0;
  } else if (++misses_ >= kMissesToSolo) {
    misses_ = 0;
    soloLeft_ = kSoloJobs;
  }
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
