//! A typed store of values, one per type: app-wide state and each socket's own data.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::RwLock;

type Map = HashMap<TypeId, Box<dyn Any + Send + Sync>>;

/// Values keyed by their type. Reads clone the value out, so no lock is ever held by a caller.
#[derive(Default)]
pub struct Extensions {
    map: RwLock<Option<Map>>,
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.read(|m| m.map_or(0, HashMap::len));
        f.debug_struct("Extensions").field("len", &n).finish()
    }
}

impl Extensions {
    /// An empty store; it allocates nothing until a value is inserted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `value`, returning the value of the same type it replaces.
    pub fn insert<T: Send + Sync + 'static>(&self, value: T) -> Option<T> {
        let mut g = self.map.write().unwrap_or_else(|e| e.into_inner());
        g.get_or_insert_with(HashMap::new)
            .insert(TypeId::of::<T>(), Box::new(value))
            .and_then(|b| b.downcast().ok().map(|b| *b))
    }

    /// A clone of the value of type `T`.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.read(|m| {
            m.and_then(|m| m.get(&TypeId::of::<T>()))
                .and_then(|b| b.downcast_ref::<T>())
                .cloned()
        })
    }

    /// Runs `f` on the value of type `T` in place, if any.
    pub fn with<T: Send + Sync + 'static, R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut g = self.map.write().unwrap_or_else(|e| e.into_inner());
        g.as_mut()
            .and_then(|m| m.get_mut(&TypeId::of::<T>()))
            .and_then(|b| b.downcast_mut::<T>())
            .map(f)
    }

    /// Removes and returns the value of type `T`.
    pub fn remove<T: Send + Sync + 'static>(&self) -> Option<T> {
        let mut g = self.map.write().unwrap_or_else(|e| e.into_inner());
        g.as_mut()
            .and_then(|m| m.remove(&TypeId::of::<T>()))
            .and_then(|b| b.downcast().ok().map(|b| *b))
    }

    /// Moves every value out into a new store, leaving this one empty.
    pub fn take(&self) -> Extensions {
        let mut g = self.map.write().unwrap_or_else(|e| e.into_inner());
        Extensions {
            map: RwLock::new(g.take()),
        }
    }

    /// Whether a value of type `T` is stored.
    pub fn contains<T: Send + Sync + 'static>(&self) -> bool {
        self.read(|m| m.is_some_and(|m| m.contains_key(&TypeId::of::<T>())))
    }

    fn read<R>(&self, f: impl FnOnce(Option<&Map>) -> R) -> R {
        let g = self.map.read().unwrap_or_else(|e| e.into_inner());
        f(g.as_ref())
    }
}
