use super::*;
use crate::theory::expected::{self, node_pruning};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn theorem2_closed_forms_by_hand_for_k6_m2() {
    let ideal = Ideal::new(2, 6, 4.0).unwrap();
    let rows = theorem2(&ideal, &[1, 2]).unwrap();
    // kn = 1: any single unit leaves (1 − 1/3)² + 1 = 13/9: random = DPP = 16·13/54.
    assert!(
        close(rows[0].random, 16.0 * 13.0 / 54.0, 1e-12)
            && close(rows[0].dpp, 16.0 * 13.0 / 54.0, 1e-12)
    );
    assert_eq!(rows[0].eq7, Verdict::Equal);
    // kn = 2: random = (16/6)(8/9 + 4/45) = 2.6074; DPP = 16·(8/9)/6 = 2.3704.
    assert!(
        close(rows[1].random, 16.0 / 6.0 * 44.0 / 45.0, 1e-12)
            && close(rows[1].dpp, 64.0 / 27.0, 1e-12)
    );
    assert_eq!(rows[1].eq7, Verdict::Holds);
    // Reweighted: E #empty groups = 2·C(3, kn)/C(6, kn): kn = 1 → 1 (equal to M − kn), kn = 2 → 0.4.
    assert!(close(rows[0].random_reweighted, 16.0 / 6.0, 1e-12) && rows[0].eq8 == Verdict::Equal);
    assert!(
        close(rows[1].random_reweighted, 0.4 * 16.0 / 6.0, 1e-12) && rows[1].eq8 == Verdict::Holds
    );
    // Importance (all |v| tie): best = balanced, worst = one group first.
    assert!(close(rows[1].importance_best, 64.0 / 27.0, 1e-12));
    assert!(close(rows[1].importance_worst, 16.0 / 6.0 * (1.0 / 9.0 + 1.0), 1e-12));
    assert!(rows.iter().all(|r| r.eq9 == Verdict::Holds));
}

#[test]
fn theorem2_closed_forms_match_enumeration_over_subsets() {
    for (m, k) in [(2, 6), (3, 6), (2, 8), (1, 4), (3, 3)] {
        let ideal = Ideal::new(m, k, 4.0).unwrap();
        for kn in 1..=m {
            let e = node_pruning(&ideal.network(), kn, true).unwrap();
            let what = format!("M={m} K={k} kn={kn}");
            assert!(
                close(e.random, ideal.random_node(kn), 1e-9),
                "{what}: {} vs {}",
                e.random,
                ideal.random_node(kn)
            );
            assert!(
                close(e.dpp.unwrap(), ge::theorem1_dpp_node(m, ideal.z, 4.0, kn), 1e-9),
                "{what}"
            );
            assert!(
                close(e.random_reweighted.unwrap(), ideal.random_node_reweighted(kn), 1e-9),
                "{what}"
            );
            assert!(
                close(
                    e.dpp_reweighted.unwrap(),
                    ge::theorem1_dpp_node_reweighted(m, 4.0, kn),
                    1e-9
                ),
                "{what}"
            );
            // The enumeration breaks ties by index: the first kn units fill group 0 first.
            assert!(close(e.importance, ideal.importance_node_range(kn).1, 1e-9), "{what}");
        }
    }
}

#[test]
fn theorem3_closed_form_and_remark4_at_the_papers_grid() {
    let ideal = Ideal::new(2, 6, 4.0).unwrap();
    let rows = theorem3(&ideal, &[("1:83".into(), 83.0 / 500.0), ("6:500".into(), 1.0)]);
    // The closed form is ε at the mean order parameters.
    assert!(rows.iter().all(|r| close(r.closed_form, r.at_mean_order_params, 1e-12)));
    // 1:83: 3.760 (the authors' script) against the expected network's 3.242: Remark 4 fails.
    assert!(close(rows[0].closed_form, 3.760, 5e-4), "{}", rows[0].closed_form);
    assert!(close(rows[0].expected_network, 3.242, 5e-4), "{}", rows[0].expected_network);
    assert_eq!(rows[0].remark4, Verdict::Fails);
    assert_eq!(rows[1].remark4, Verdict::Holds);
    // The expected network's closed form against `ge` on Q → c²Q, R → cR.
    for c in [0.1, 0.37, 0.8] {
        assert!(close(
            ideal.expected_network(c),
            expected::expected_network(&ideal.network(), c),
            1e-12
        ));
    }
}

#[test]
fn theorem4_holds_inside_its_assumptions_and_fails_where_known() {
    // Z = 3 (outside Z ≥ 4): kn = 2, c = 1/3: DPP 64/27 = 2.370 < random edge 2.570.
    let ideal = Ideal::new(2, 6, 4.0).unwrap();
    let row = &theorem4(&ideal, &[("2".into(), 2.0, 1.0 / 3.0)])[0];
    assert!(close(row.dpp, 64.0 / 27.0, 1e-12) && close(row.random_edge, 2.570, 5e-4), "{row:?}");
    assert_eq!(row.eq11, Verdict::Fails);
    assert!(!row.assumptions_met);
    // K = 20, M = 5 (Z = 4), kn = 5: DPP 7.5; c = 1/4 holds (7.484), the rounded 124/500 fails.
    let ideal = Ideal::new(5, 20, 4.0).unwrap();
    let rows = theorem4(&ideal, &[("5".into(), 5.0, 0.25), ("5:124".into(), 5.0, 0.248)]);
    assert!(close(rows[0].dpp, 7.5, 1e-12) && close(rows[0].random_edge, 7.484, 5e-4), "{rows:?}");
    assert_eq!((rows[0].eq11, rows[0].assumptions_met), (Verdict::Holds, true));
    assert_eq!((rows[1].eq11, rows[1].assumptions_met), (Verdict::Fails, true));
    assert!(rows[1].random_edge > 7.5);
    // With reweighting DPP node (ε̂ = (M − kn)v*²/6) beats random edge.
    assert!(rows.iter().all(|r| r.reweighted == Verdict::Holds));
}

#[test]
fn reweighted_random_edge_closed_form_matches_the_direct_refit() {
    for (m, k) in [(2, 6), (5, 20), (1, 1), (3, 6)] {
        let ideal = Ideal::new(m, k, 4.0).unwrap();
        for c in [0.05, 1.0 / 6.0, 0.5, 1.0] {
            let direct = expected::random_edge_reweighted_limit(&ideal.network(), c);
            assert!(
                close(ideal.random_edge_reweighted(c), direct, 1e-9),
                "M={m} K={k} c={c}: {direct}"
            );
        }
    }
    // Hand value, K = 6, M = 2, c = 1/6: (16)(1/3 − 3·0.069601²/0.121583) = 3.4209.
    assert!(close(Ideal::new(2, 6, 4.0).unwrap().random_edge_reweighted(1.0 / 6.0), 3.4209, 5e-4));
}
