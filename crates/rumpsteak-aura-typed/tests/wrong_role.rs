//! Starting a role on another role's endpoint is refused, having touched
//! nothing.

mod common;

use common::{Handler, mesh};
use rumpsteak_aura::ChoreographyError;

rumpsteak_aura_macros::protocol! {
    /// `A` says hello to `B`.
    #[protocol(crate = "::rumpsteak_aura_typed")]
    pub mod hello = "
        roles A, B;
        A -> B: Hello(u32);";
}

use hello::Role;

#[test]
fn start_on_another_roles_endpoint_is_wrong_role() {
    let mut eps = mesh(&Role::ALL).into_iter();
    let (_ea, mut eb) = (eps.next().unwrap(), eps.next().unwrap());
    let mut h = Handler::new();
    let e = hello::a::start(&mut h, &mut eb).unwrap_err();
    match &e {
        ChoreographyError::WrongRole { expected, found } => {
            assert_eq!((expected.as_str(), found.as_str()), ("A", "B"));
        }
        other => panic!("expected WrongRole, got {other:?}"),
    }
    assert_eq!(
        e.to_string(),
        "the endpoint of role `B` cannot run role `A`"
    );
    // Nothing was sent, closed or abandoned.
    let meta = eb.get_metadata(&Role::A).unwrap();
    assert!(!meta.is_abandoned && eb.has_channel(&Role::A), "{meta:?}");
    assert_eq!(eb.traffic(&Role::A).unwrap().frames_sent, 0);
    // The endpoint's own role still starts.
    assert!(hello::b::start(&mut h, &mut eb).is_ok());
}
