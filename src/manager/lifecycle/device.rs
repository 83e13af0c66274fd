//! The lifecycle and its device: a loss empties the manager and makes the next operation
//! re-create the device; a WebGPU error while no work runs is told on the status stream.

use std::rc::Rc;

use crate::backend::{GpuFault, GpuFaultKind};
use crate::error::ErrorCode;
use crate::manager::engine::{Engine, Resident};
use crate::manager::error::ManagerError;
use crate::status::ErrorInfo;

use super::ModelLifecycle;

impl<E: Engine> ModelLifecycle<E> {
    /// The device of `generation` was lost: every model is gone with it. Says so (a
    /// `DeviceLostError` event naming them), forgets them all and returns their accounting; the
    /// next operation re-creates the device. A loss of an older device, or a second report, is
    /// ignored.
    pub fn device_lost(&self, generation: u32, message: &str) {
        if generation != self.generation.get() || self.lost.replace(true) {
            return;
        }
        self.engine.device_lost();
        let models = std::mem::take(&mut *self.models.borrow_mut());
        for (key, model) in &models {
            model.dispose();
            self.memory().register_unloaded(key);
        }
        *self.current.borrow_mut() = None;
        let names: Vec<&str> = models.keys().map(String::as_str).collect();
        let message = format!(
            "The GPU device was lost ({message}). {} The next load re-creates the device.",
            if names.is_empty() {
                "No model was loaded.".to_owned()
            } else {
                format!("Every model on it was unloaded: {}.", names.join(", "))
            }
        );
        self.status.error(ErrorInfo::of(ErrorCode::DeviceLost, message), None);
        self.engine.report_memory(None);
    }

    /// Hears the losses of the page's WebGPU device ([`Self::device_lost`]) and its errors
    /// outside any work ([`Self::device_fault`]) from now on, for as long as the lifecycle lives.
    pub fn follow_page_device(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        crate::device::on_page_device_lost(Rc::new(move |generation, message| {
            if let Some(lifecycle) = weak.upgrade() {
                lifecycle.device_lost(generation, message);
            }
        }));
        let weak = Rc::downgrade(self);
        crate::device::on_page_device_fault(Rc::new(move |generation, fault| {
            if let Some(lifecycle) = weak.upgrade() {
                lifecycle.device_fault(generation, fault);
            }
        }));
    }

    /// After a loss: a new device (the next generation).
    pub(super) async fn recover(&self) -> Result<(), ManagerError<E::Error>> {
        let generation = self.engine.recover().await.map_err(ManagerError::Engine)?;
        self.generation.set(generation);
        self.lost.set(false);
        self.status.info(format!("Re-created the WebGPU device after the loss (generation {generation})."), None);
        Ok(())
    }

    /// The device of `generation` reported `fault` while no load and no generation ran on it, so
    /// no call fails with it: an `error` event says so (`GpuError`, or `OutOfMemoryError`), once
    /// per fault. A fault of an older or a lost device is ignored.
    pub fn device_fault(&self, generation: u32, fault: &GpuFault) {
        if generation != self.generation.get() || self.lost.get() {
            return;
        }
        let code = match fault.kind {
            GpuFaultKind::OutOfMemory => ErrorCode::OutOfMemory,
            GpuFaultKind::Validation | GpuFaultKind::Internal => ErrorCode::GpuError,
        };
        let message = format!(
            "The GPU reported an error while no model was loading or generating ({fault}). The models stay loaded; reload the page if errors repeat."
        );
        self.status.error(ErrorInfo::of(code, message), None);
    }
}
