/** A Content-Type's media type without parameters, lowercase. */
export function mediaTypeOf(contentType: string): string {
  return contentType.split(";")[0]!.trim().toLowerCase();
}
