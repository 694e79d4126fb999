//! Dependency levels and cycle detection, linear in services + edges.
//!
//! A service's level is 0 with no dependencies, else 1 + the highest level among all of its
//! dependencies (hard and soft). Kahn's algorithm gives the levels; whatever it cannot order
//! sits on or behind a cycle, which a walk along unresolved dependencies then finds.

/// Levels for `deps[i]` (indexes of service i's dependencies), or one cycle as indexes
/// (`[a, b, c, a]`).
pub fn levels(deps: &[Vec<usize>]) -> Result<Vec<u32>, Vec<usize>> {
    let n = deps.len();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waiting: Vec<usize> = vec![0; n];
    for (service, service_deps) in deps.iter().enumerate() {
        waiting[service] = service_deps.len();
        for &dep in service_deps {
            dependents[dep].push(service);
        }
    }
    let mut level = vec![0u32; n];
    let mut ready: Vec<usize> = (0..n).filter(|&s| waiting[s] == 0).collect();
    let mut done = 0;
    while let Some(service) = ready.pop() {
        done += 1;
        for &dependent in &dependents[service] {
            level[dependent] = level[dependent].max(level[service] + 1);
            waiting[dependent] -= 1;
            if waiting[dependent] == 0 {
                ready.push(dependent);
            }
        }
    }
    if done == n {
        return Ok(level);
    }
    Err(find_cycle(deps, &waiting))
}

/// Walk from an unresolved service along unresolved dependencies until a service repeats.
/// Every unresolved service has an unresolved dependency, so the walk must close a cycle.
fn find_cycle(deps: &[Vec<usize>], waiting: &[usize]) -> Vec<usize> {
    let Some(start) = (0..deps.len()).find(|&s| waiting[s] > 0) else {
        return Vec::new();
    };
    let mut seen_at = vec![usize::MAX; deps.len()];
    let mut path = Vec::new();
    let mut current = start;
    loop {
        if seen_at[current] != usize::MAX {
            let mut cycle = path.split_off(seen_at[current]);
            cycle.push(current);
            return cycle;
        }
        seen_at[current] = path.len();
        path.push(current);
        match deps[current].iter().copied().find(|&d| waiting[d] > 0) {
            Some(next) => current = next,
            None => return path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// hub's one generator, seeded, so the property tests are reproducible.
    type XorShift = crate::backoff::Rng;

    /// A random DAG: edges only from a later index to an earlier one, then shuffled names.
    fn random_dag(rng: &mut XorShift, n: usize, edges: usize) -> Vec<Vec<usize>> {
        let mut perm: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            perm.swap(i, rng.below(i + 1));
        }
        let mut deps = vec![Vec::new(); n];
        for _ in 0..edges {
            let a = rng.below(n);
            let b = rng.below(n);
            if a == b {
                continue;
            }
            let (later, earlier) = if a > b { (a, b) } else { (b, a) };
            if !deps[perm[later]].contains(&perm[earlier]) {
                deps[perm[later]].push(perm[earlier]);
            }
        }
        deps
    }

    #[test]
    fn property_levels_exceed_every_dependency() {
        let mut rng = XorShift::seeded(0x9E37_79B9_7F4A_7C15);
        for round in 0..300 {
            let n = 1 + rng.below(60);
            let edges = rng.below(3 * n + 1);
            let deps = random_dag(&mut rng, n, edges);
            let level =
                levels(&deps).unwrap_or_else(|c| panic!("round {round}: false cycle {c:?}"));
            for (s, ds) in deps.iter().enumerate() {
                for &d in ds {
                    assert!(
                        level[s] > level[d],
                        "round {round}: {s} at {} vs dep {d} at {}",
                        level[s],
                        level[d]
                    );
                }
                let expected = ds.iter().map(|&d| level[d] + 1).max().unwrap_or(0);
                assert_eq!(
                    level[s], expected,
                    "round {round}: level of {s} is not minimal"
                );
            }
        }
    }

    #[test]
    fn property_a_random_cycle_is_always_reported() {
        let mut rng = XorShift::seeded(0xD1B5_4A32_D192_ED03);
        for round in 0..300 {
            let n = 2 + rng.below(50);
            let edges = rng.below(2 * n + 1);
            let mut deps = random_dag(&mut rng, n, edges);
            // Close a cycle through k distinct services: c0 -> c1 -> … -> c0.
            let k = 2 + rng.below(n - 1);
            let mut members: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                members.swap(i, rng.below(i + 1));
            }
            members.truncate(k);
            for i in 0..k {
                let (from, to) = (members[i], members[(i + 1) % k]);
                if !deps[from].contains(&to) {
                    deps[from].push(to);
                }
            }
            let cycle = levels(&deps).expect_err("a cycle must be reported");
            assert!(cycle.len() >= 3, "round {round}: {cycle:?}");
            assert_eq!(
                cycle.first(),
                cycle.last(),
                "round {round}: not closed: {cycle:?}"
            );
            for pair in cycle.windows(2) {
                assert!(
                    deps[pair[0]].contains(&pair[1]),
                    "round {round}: {cycle:?} has a false edge"
                );
            }
        }
    }

    #[test]
    fn seed_shape() {
        // postgres mongodb redis opa at 0; keycloak (postgres) and kas (keycloak? no: mongodb) at 1.
        let deps = vec![vec![], vec![], vec![], vec![], vec![0], vec![1]];
        assert_eq!(levels(&deps).unwrap(), vec![0, 0, 0, 0, 1, 1]);
    }
}
