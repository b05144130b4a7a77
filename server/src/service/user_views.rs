//! The users that protected routes show, kept in memory so that a Bearer request needs no store
//! round trip: what `GET /api/me` answers is an id and a username, and neither ever changes (there
//! is no rename; ids are never reused). What can change is whether the user still exists or is
//! active, and that reaches access tokens through the revocation list, which is checked before the
//! route runs. So an entry only has to go when its user is deleted or disabled, here or (through the
//! polled revocation of the user) on another instance.

use std::collections::HashMap;
use std::sync::RwLock;

use super::UserView;

/// Entries kept at most: about 100 bytes each, so the map stays near a megabyte.
const CAPACITY: usize = 10_000;

/// User id → what protected routes show; bounded by [`CAPACITY`].
#[derive(Default)]
pub(super) struct UserViews {
    by_id: RwLock<HashMap<String, UserView>>,
}

impl UserViews {
    pub(super) fn get(&self, user_id: &str) -> Option<UserView> {
        self.by_id.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(user_id).cloned()
    }

    pub(super) fn remember(&self, user: &UserView) {
        let mut by_id = self.by_id.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if by_id.len() >= CAPACITY && !by_id.contains_key(&user.id) {
            // Starting over is the cheapest bound, and a miss costs one store read.
            by_id.clear();
        }
        by_id.insert(user.id.clone(), user.clone());
    }

    pub(super) fn forget(&self, user_id: &str) {
        self.by_id.write().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(user_id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_id.read().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: usize) -> UserView {
        UserView { id: format!("u{id}"), username: format!("user {id}") }
    }

    #[test]
    fn remembered_users_are_found_until_forgotten() {
        let views = UserViews::default();
        views.remember(&view(1));
        assert_eq!(views.get("u1"), Some(view(1)));
        assert_eq!(views.get("u2"), None);
        views.forget("u1");
        assert_eq!(views.get("u1"), None);
    }

    #[test]
    fn the_map_never_grows_past_its_capacity() {
        let views = UserViews::default();
        for id in 0..CAPACITY + 10 {
            views.remember(&view(id));
        }
        assert!(views.len() <= CAPACITY, "{}", views.len());
        assert_eq!(views.get(&format!("u{}", CAPACITY + 9)), Some(view(CAPACITY + 9)), "the newest is kept");
    }
}
