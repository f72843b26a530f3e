#!/usr/bin/ruby
# BigBlueButton post-archive script for Quorate: copy it into
# /usr/local/bigbluebutton/core/scripts/post_archive/. BigBlueButton runs it with
# `-m MEETING_ID` once the raw recording is archived; it marks the raw folder finished, and
# `quorate watch --folder bbb=/var/bigbluebutton/recording/raw` takes its audio from there.
# Set QUORATE_BBB_RAW to read another raw folder (tests do).
meeting_id = nil
ARGV.each_with_index do |argument, index|
  meeting_id = ARGV[index + 1] if ["-m", "--meeting-id"].include?(argument)
  meeting_id = argument.split("=", 2)[1] if argument.start_with?("--meeting-id=")
end
abort("bbb-post-archive: usage: bbb-post-archive.rb -m MEETING_ID") if meeting_id.nil? || meeting_id.empty?
abort("bbb-post-archive: #{meeting_id} is not a meeting ID") unless meeting_id.match?(/\A[0-9A-Za-z_-]+\z/)
raw = File.join(ENV.fetch("QUORATE_BBB_RAW", "/var/bigbluebutton/recording/raw"), meeting_id)
abort("bbb-post-archive: #{raw} is not a folder") unless File.directory?(raw)
# The marker is written whole or not at all: a temporary name, then a rename.
File.write(File.join(raw, ".quorate-ready.partial"), "")
File.rename(File.join(raw, ".quorate-ready.partial"), File.join(raw, ".quorate-ready"))
puts "bbb-post-archive: #{raw} handed to quorate watch"
