from conftest import relative_hypergrad, run_steps


def test_implicit_gd_reaches_stationarity(quadratic, make_solver):
    solver = make_solver("Implicit-GD", quadratic, step_size=0.3)
    run_steps(solver, 400)
    assert relative_hypergrad(quadratic, solver) <= 1e-6
    # the reported inner variable is y*(x) for the reported x
    result = solver.get_result()
    y_star = quadratic.inner_solution(result["outer_var"])
    assert (result["inner_var"] - y_star).norm() <= 1e-6 * y_star.norm()
