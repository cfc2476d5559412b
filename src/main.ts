#!/usr/bin/env node
/** Entry point of `npm start`: the only module that touches process state. */
import { runServe } from "./cli/index.js";

process.exitCode = await runServe([]);
