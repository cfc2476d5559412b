export { PosternClient, type PosternClientOptions, type PreparedMessage, type SendResult } from "./client.js";
export { PosternRequestError } from "./errors.js";
