//! The simulation's executor. Every task runs on this one thread; whenever a task reaches a port
//! call (`point`), the seed chooses which ready task runs next, so a seed fixes one interleaving
//! of everything that runs at once, and replays it. A task spawned as crashable may be dropped
//! at a point instead (its process died between two port calls): what it had done stays done,
//! what it had not is never done, exactly as a crash leaves it.
//!
//! Time is tokio's paused clock: when no task is ready, tokio moves time on to the next timer,
//! so hours of backoff and days of windows cost nothing.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type BoxTask = Pin<Box<dyn Future<Output = ()>>>;

/// What the wakers share (they must be `Send`): which tasks are ready, and the driver's waker.
#[derive(Default)]
struct Wakeups {
    ready: Mutex<BTreeSet<u64>>,
    driver: Mutex<Option<Waker>>,
}

struct TaskWaker {
    id: u64,
    wakeups: Arc<Wakeups>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakeups.ready.lock().expect("wakeups").insert(self.id);
        if let Some(w) = self.wakeups.driver.lock().expect("wakeups").as_ref() {
            w.wake_by_ref();
        }
    }
}

struct Entry {
    fut: BoxTask,
    waker: Waker,
    crashable: bool,
    /// When it started, on the logical clock.
    started: u64,
    /// Called when the task is dropped at a point.
    on_crash: Option<Box<dyn FnOnce()>>,
}

/// Counts a run reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub switches: u64,
    pub points: u64,
    pub crashes: u64,
    pub tasks: u64,
}

pub struct Executor {
    wakeups: Arc<Wakeups>,
    tasks: RefCell<BTreeMap<u64, Entry>>,
    next_id: Cell<u64>,
    rng: RefCell<StdRng>,
    crash_rate: Cell<f64>,
    /// The task being polled, and whether it asked to be dropped.
    current: Cell<Option<u64>>,
    crash_current: Cell<bool>,
    /// The logical clock: one tick per spawn and per point, so the model can order events.
    tick: Cell<u64>,
    counts: Cell<Counts>,
}

thread_local! {
    static EXECUTOR: RefCell<Option<Rc<Executor>>> = const { RefCell::new(None) };
}

fn with<R>(f: impl FnOnce(&Rc<Executor>) -> R) -> R {
    EXECUTOR.with(|e| f(e.borrow().as_ref().expect("inside the simulation's executor")))
}

impl Executor {
    pub fn new(seed: u64, crash_rate: f64) -> Rc<Executor> {
        Rc::new(Executor {
            wakeups: Arc::default(),
            tasks: RefCell::default(),
            next_id: Cell::new(0),
            rng: RefCell::new(StdRng::seed_from_u64(seed ^ 0xe8ec)),
            crash_rate: Cell::new(crash_rate),
            current: Cell::new(None),
            crash_current: Cell::new(false),
            tick: Cell::new(0),
            counts: Cell::new(Counts::default()),
        })
    }

    pub fn counts(&self) -> Counts {
        self.counts.get()
    }

    fn count(&self, f: impl FnOnce(&mut Counts)) {
        let mut c = self.counts.get();
        f(&mut c);
        self.counts.set(c);
    }

    fn insert(&self, fut: BoxTask, crashable: bool, on_crash: Option<Box<dyn FnOnce()>>) {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let waker = Waker::from(Arc::new(TaskWaker { id, wakeups: self.wakeups.clone() }));
        let started = self.tick.get() + 1;
        self.tick.set(started);
        self.tasks.borrow_mut().insert(id, Entry { fut, waker, crashable, started, on_crash });
        self.wakeups.ready.lock().expect("wakeups").insert(id);
        self.count(|c| c.tasks += 1);
    }

    /// Runs `main` (never crashed) with every task it spawns until `main` is done; tasks still
    /// running then are dropped.
    pub fn run<T: 'static>(
        self: &Rc<Self>,
        rt: &tokio::runtime::Runtime,
        main: impl Future<Output = T> + 'static,
    ) -> T {
        let out: Rc<RefCell<Option<T>>> = Rc::default();
        let slot = out.clone();
        self.insert(Box::pin(async move { *slot.borrow_mut() = Some(main.await) }), false, None);
        EXECUTOR.with(|e| *e.borrow_mut() = Some(self.clone()));
        let driver = Driver { exec: self.clone(), out: out.clone() };
        let result = rt.block_on(driver);
        EXECUTOR.with(|e| *e.borrow_mut() = None);
        self.tasks.borrow_mut().clear();
        result
    }
}

thread_local! {
    /// Whether the task being polled may be crashed (set by `Driver` around each poll).
    static CRASHABLE: Cell<bool> = const { Cell::new(false) };
}

struct Driver<T> {
    exec: Rc<Executor>,
    out: Rc<RefCell<Option<T>>>,
}

impl<T> Future for Driver<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        *self.exec.wakeups.driver.lock().expect("wakeups") = Some(cx.waker().clone());
        loop {
            if let Some(v) = self.out.borrow_mut().take() {
                return Poll::Ready(v);
            }
            if !self.exec.step() {
                return Poll::Pending;
            }
        }
    }
}

impl Executor {
    /// Polls one ready task chosen by the seed; `false` when none is ready.
    fn step(&self) -> bool {
        let id = {
            let mut ready = self.wakeups.ready.lock().expect("wakeups");
            if ready.is_empty() {
                return false;
            }
            let n = self.rng.borrow_mut().random_range(0..ready.len());
            let id = *ready.iter().nth(n).expect("n < len");
            ready.remove(&id);
            id
        };
        let Some(mut entry) = self.tasks.borrow_mut().remove(&id) else { return true };
        self.count(|c| c.switches += 1);
        self.current.set(Some(id));
        self.crash_current.set(false);
        CRASHABLE.with(|c| c.set(entry.crashable));
        STARTED.with(|s| s.set(entry.started));
        let waker = entry.waker.clone();
        let mut cx = Context::from_waker(&waker);
        let poll = entry.fut.as_mut().poll(&mut cx);
        self.current.set(None);
        CRASHABLE.with(|c| c.set(false));
        match poll {
            Poll::Ready(()) => {}
            Poll::Pending if self.crash_current.get() => {
                self.count(|c| c.crashes += 1);
                trace(|| format!("crash of task {}", entry.started));
                drop(entry.fut);
                if let Some(f) = entry.on_crash.take() {
                    f();
                }
            }
            Poll::Pending => {
                self.tasks.borrow_mut().insert(id, entry);
            }
        }
        true
    }
}

thread_local! {
    /// When the task being polled started, on the logical clock.
    static STARTED: Cell<u64> = const { Cell::new(0) };
}

/// Spawns `fut`; crashable tasks may be dropped at any `point` (then `on_crash` runs).
pub fn spawn(fut: impl Future<Output = ()> + 'static, crashable: bool, on_crash: Option<Box<dyn FnOnce()>>) {
    with(|e| e.insert(Box::pin(fut), crashable, on_crash));
}

/// Spawns `fut` and returns a handle that resolves to its output, or `None` if it crashed.
pub fn spawn_joined<T: 'static>(fut: impl Future<Output = T> + 'static, crashable: bool) -> Joined<T> {
    let slot: Rc<RefCell<JoinSlot<T>>> = Rc::new(RefCell::new(JoinSlot { done: None, waker: None }));
    let (a, b) = (slot.clone(), slot.clone());
    let on_crash: Box<dyn FnOnce()> = Box::new(move || {
        let mut s = b.borrow_mut();
        s.done = Some(None);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    });
    spawn(
        async move {
            let v = fut.await;
            let mut s = a.borrow_mut();
            s.done = Some(Some(v));
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        },
        crashable,
        Some(on_crash),
    );
    Joined { slot }
}

struct JoinSlot<T> {
    done: Option<Option<T>>,
    waker: Option<Waker>,
}

/// A spawned task's outcome: `Some(output)`, or `None` when it crashed.
pub struct Joined<T> {
    slot: Rc<RefCell<JoinSlot<T>>>,
}

impl<T> Future for Joined<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut s = self.slot.borrow_mut();
        match s.done.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A port call is about to happen: let the seed run another task first, and maybe crash this
/// one here.
pub fn point() -> Point {
    Point { yielded: false }
}

pub struct Point {
    yielded: bool,
}

impl Future for Point {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        let crash = with(|e| {
            e.tick.set(e.tick.get() + 1);
            e.count(|c| c.points += 1);
            let rate = e.crash_rate.get();
            CRASHABLE.with(|c| c.get()) && rate > 0.0 && e.rng.borrow_mut().random_bool(rate)
        });
        if crash {
            with(|e| e.crash_current.set(true));
            return Poll::Pending;
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The logical clock's reading: later events read more.
pub fn tick() -> u64 {
    with(|e| {
        let t = e.tick.get() + 1;
        e.tick.set(t);
        t
    })
}

/// When the task now running started, on the logical clock.
pub fn task_started() -> u64 {
    STARTED.with(|s| s.get())
}

/// Prints `what` with the world's time when `SIM_TRACE` is set (replaying one seed to see why).
pub fn trace(what: impl FnOnce() -> String) {
    thread_local! {
        static ON: bool = std::env::var_os("SIM_TRACE").is_some();
    }
    if ON.with(|on| *on) {
        let t = tokio::time::Instant::now();
        println!("[{:>10.3}] {}", (t - START.with(|s| *s)).as_secs_f64(), what());
    }
}

thread_local! {
    static START: tokio::time::Instant = tokio::time::Instant::now();
}

/// Stops crashing tasks (the drain at the end of a run).
pub fn stop_crashes() {
    with(|e| e.crash_rate.set(0.0));
}
