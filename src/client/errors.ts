import type { ProblemDetails } from "../errors.js";

/** The gateway answered with a problem+json error. `code` is the stable error code. */
export class PosternRequestError extends Error {
  readonly status: number;
  readonly code: string;
  readonly problem: Partial<ProblemDetails>;

  constructor(status: number, problem: Partial<ProblemDetails>) {
    super(`${status} ${problem.code ?? "error"}${problem.detail ? `: ${problem.detail}` : ""}`);
    this.name = "PosternRequestError";
    this.status = status;
    this.code = typeof problem.code === "string" ? problem.code : "unknown";
    this.problem = problem;
  }
}
