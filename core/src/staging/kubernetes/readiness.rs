//! The readiness rules (kubedog's) of the workloads a template makes.

use super::*;

/// Readiness of the staging's workloads.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Readiness {
    Ready,
    /// Not ready yet (may become ready).
    Pending(String),
    /// Will not become ready by waiting.
    Failed(String),
}

pub(super) fn deployment_readiness(d: &Deployment) -> Readiness {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(st) = &d.status else {
        return Readiness::Pending("no status yet".into());
    };
    for c in st.conditions.iter().flatten() {
        if c.type_ == "Progressing"
            && c.status == "False"
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        {
            return Readiness::Failed(format!(
                "ProgressDeadlineExceeded: {}",
                c.message.as_deref().unwrap_or("progress deadline exceeded")
            ));
        }
    }
    let generation = d.metadata.generation.unwrap_or(0);
    let observed = st.observed_generation.unwrap_or(0);
    if observed < generation {
        return Readiness::Pending(format!(
            "waiting for the controller to observe generation {generation} (observed {observed})"
        ));
    }
    let (updated, total, available) = (
        st.updated_replicas.unwrap_or(0),
        st.replicas.unwrap_or(0),
        st.available_replicas.unwrap_or(0),
    );
    if updated != want || total != want || available != want {
        return Readiness::Pending(format!(
            "{updated} updated, {total} total, {available} available of {want} replicas"
        ));
    }
    Readiness::Ready
}

pub(super) fn statefulset_readiness(s: &StatefulSet) -> Readiness {
    let spec = s.spec.as_ref();
    let want = spec.and_then(|s| s.replicas).unwrap_or(1);
    let Some(st) = &s.status else {
        return Readiness::Pending("no status yet".into());
    };
    let generation = s.metadata.generation.unwrap_or(0);
    match st.observed_generation {
        Some(o) if o >= generation => {}
        o => {
            return Readiness::Pending(format!(
                "waiting for the controller to observe generation {generation} (observed {})",
                o.unwrap_or(0)
            ))
        }
    }
    let ready = st.ready_replicas.unwrap_or(0);
    if ready < want {
        return Readiness::Pending(format!("{ready} of {want} replicas ready"));
    }
    let strategy = spec.and_then(|s| s.update_strategy.as_ref());
    let on_delete = strategy.and_then(|u| u.type_.as_deref()) == Some("OnDelete");
    if !on_delete {
        let partition = strategy
            .and_then(|u| u.rolling_update.as_ref())
            .and_then(|r| r.partition)
            .unwrap_or(0);
        if partition > 0 {
            let updated = st.updated_replicas.unwrap_or(0);
            if updated < want - partition {
                return Readiness::Pending(format!(
                    "{updated} of {} replicas updated (partition {partition})",
                    want - partition
                ));
            }
        } else if st.update_revision.is_some() && st.update_revision != st.current_revision {
            return Readiness::Pending(format!(
                "rolling update in progress (revision {} → {})",
                st.current_revision.as_deref().unwrap_or("?"),
                st.update_revision.as_deref().unwrap_or("?")
            ));
        }
    }
    Readiness::Ready
}

pub(super) fn job_readiness(j: &Job) -> Readiness {
    let conditions = j.status.as_ref().and_then(|s| s.conditions.as_ref());
    for c in conditions.into_iter().flatten() {
        if c.status != "True" {
            continue;
        }
        match c.type_.as_str() {
            "Complete" => return Readiness::Ready,
            "Failed" => {
                return Readiness::Failed(format!(
                    "failed: {}{}",
                    c.reason.as_deref().unwrap_or("Failed"),
                    c.message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ))
            }
            _ => {}
        }
    }
    Readiness::Pending("not complete yet".into())
}

pub(super) fn pod_error(p: &Pod) -> Option<String> {
    let st = p.status.as_ref()?;
    let all = st
        .init_container_statuses
        .iter()
        .flatten()
        .chain(st.container_statuses.iter().flatten());
    for c in all {
        let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
        if let Some(reason) = waiting.and_then(|w| w.reason.as_deref()) {
            if matches!(
                reason,
                "ImagePullBackOff" | "ErrImagePull" | "CrashLoopBackOff"
            ) {
                return Some(format!("container {}: {reason}", c.name));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_rules() {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
        }))
        .unwrap();
        assert!(
            matches!(deployment_readiness(&d), Readiness::Pending(r) if r.contains("generation 2"))
        );
        let mut d2 = d.clone();
        d2.status.as_mut().unwrap().observed_generation = Some(2);
        assert_eq!(deployment_readiness(&d2), Readiness::Ready);
        let d3: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": 1},
            "spec": {"selector": {}, "template": {}},
            "status": {"observedGeneration": 1, "conditions": [{"type": "Progressing", "status": "False",
                "reason": "ProgressDeadlineExceeded", "message": "too slow"}]}
        }))
        .unwrap();
        assert!(
            matches!(deployment_readiness(&d3), Readiness::Failed(r) if r.contains("ProgressDeadlineExceeded"))
        );
    }
}
