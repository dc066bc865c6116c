//! JS callbacks called from core's threads (progress, staging events).
//!
//! A [`Listener`] is a thread-safe function whose JS side calls the user's function and turns
//! an exception it throws into a process warning (`'CapsaListenerError'`), so a listener that
//! throws never crashes the process and keeps receiving later calls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::{FnArgs, Function, FunctionRef, JsObjectValue, Object, ToNapiValue};
use napi::threadsafe_function::{
    ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue,
};
use napi::{Env, Status};

/// The `name` of warnings a throwing listener produces.
pub(crate) const LISTENER_WARNING: &str = "CapsaListenerError";

/// A JS function callable from any thread with a `T`.
pub(crate) struct Listener<T: 'static> {
    tsfn: ThreadsafeFunction<T, (), (), Status, false>,
    active: Arc<AtomicBool>,
}

/// Switches a [`Listener`] off from the JS thread: calls still queued are dropped, so once
/// [`ListenerSwitch::off`] returns the JS function is never called again.
#[derive(Clone)]
pub(crate) struct ListenerSwitch(Arc<AtomicBool>);

impl ListenerSwitch {
    /// No further call reaches the JS function.
    pub(crate) fn off(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl<T: ToNapiValue + 'static> Listener<T> {
    /// Wrap `listener`. While the `Listener` lives it keeps the event loop alive; dropping it
    /// releases it.
    pub(crate) fn new(
        env: &Env,
        listener: Function<'_, T, UnknownReturnValue>,
    ) -> napi::Result<Self> {
        let user: FunctionRef<T, UnknownReturnValue> = listener.create_ref()?;
        let active = Arc::new(AtomicBool::new(true));
        let on = active.clone();
        let trampoline =
            env.create_function_from_closure::<(), (), _>("capsaListener", |_| Ok(()))?;
        let tsfn = trampoline
            .build_threadsafe_function::<T>()
            .callee_handled::<false>()
            .build_callback(move |ctx| {
                if !on.load(Ordering::SeqCst) {
                    return Ok(());
                }
                let f = user.borrow_back(&ctx.env)?;
                if let Err(err) = f.call(ctx.value) {
                    warn(&ctx.env, &err.reason);
                }
                Ok(())
            })?;
        Ok(Listener { tsfn, active })
    }

    /// The switch that turns this listener off.
    pub(crate) fn switch(&self) -> ListenerSwitch {
        ListenerSwitch(self.active.clone())
    }

    /// Queue a call; never blocks the calling thread.
    pub(crate) fn send(&self, value: T) {
        // Only fails while the environment shuts down: nothing is listening any more then.
        let _ = self
            .tsfn
            .call(value, ThreadsafeFunctionCallMode::NonBlocking);
    }
}

/// `process.emitWarning(message, 'CapsaListenerError')`; best effort.
fn warn(env: &Env, reason: &str) {
    let emit = || -> napi::Result<()> {
        let global = env.get_global()?;
        let process: Object = global.get_named_property("process")?;
        let emit_warning: Function<FnArgs<(String, String)>, UnknownReturnValue> =
            process.get_named_property("emitWarning")?;
        emit_warning.apply(
            process,
            (
                format!("capsa: a listener threw: {reason}"),
                LISTENER_WARNING.to_string(),
            )
                .into(),
        )?;
        Ok(())
    };
    let _ = emit();
}
